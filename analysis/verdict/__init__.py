"""Verdicts on the article's rows: the table, availability under faults, break-even points."""
