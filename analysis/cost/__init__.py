"""What a request costs: the one cost table, per-configuration summaries, machine speed,
the micro tier, compare and recommend."""
