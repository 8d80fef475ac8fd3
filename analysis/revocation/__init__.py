"""Revocation: the lag per strategy, what the check costs, what it stores."""
