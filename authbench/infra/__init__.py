"""Processes and networking: targets, HAProxy, ports, the Docker Compose generator."""
