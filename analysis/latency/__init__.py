"""Latency at equal offered load and along a load curve."""
