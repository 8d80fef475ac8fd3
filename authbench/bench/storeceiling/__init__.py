"""`authbench bench-store`: the shared store's ceiling, the store term of a cluster's bound.

N target nodes sharing one store serve at most min(N x node capacity, store capacity /
store operations per request). This measures the store term: each store operation a
mode's hot path makes (GET /api/me), with the modes' real keys and values, driven at
saturation by the store's own benchmark tool with the store alone on a core
(redis-benchmark against a private pinned redis-server; pgbench against the given
PostgreSQL in a private schema), with the store's CPU per operation and what ran out.

operations.py: what each mode asks of the store, as benchmark commands; fill.py: the
data, loaded through the targets' own bulk paths; redis_ceiling.py and
postgres_ceiling.py: one store each; tools.py: the tools, pinned, their CPU;
result.py: the config and store-ceiling.json (its keys documented there); measure.py:
the whole run and the suites' store-ceiling extra; render.py: the terminal table. The
command is authbench/commands/bench.py; the reader analysis/store/ceiling.py.
"""
