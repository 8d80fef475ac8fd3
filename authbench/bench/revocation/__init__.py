"""`authbench bench-revocation`: what revocation costs in storage, and "log out everywhere".

Three measurements, each in a private namespace dropped afterwards:

- growth: the JWT blocklist filled through each store's bulk path up to a few sizes;
  at each, the entries the store counts, the bytes it takes and the cost of a check;
- steady state: logouts at a fixed rate into Redis, each entry living until its
  token's exp; the entry count plateaus at rate x mean remaining life (Little's law);
- logout-all: deleting a user's k sessions against the JWT per-user cutoff (one write).

result.py holds what is measured and what revocation.json holds, stores.py the private
stores, measure.py the three measurements, render.py the terminal tables; the command
is authbench/commands/bench.py.
"""
