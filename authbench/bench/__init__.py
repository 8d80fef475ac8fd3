"""Standalone benchmarks, one per bench-* command (and micro), outside the suite runner."""
