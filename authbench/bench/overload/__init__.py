"""`authbench bench-overload`: each mode driven at three times its capacity, then let go.

Per mode: start one target, log in once, measure its capacity (wrk, closed loop at
saturation), take a latency baseline at a low rate, offer `factor` x capacity for
`seconds` open-loop (h2load), sampling the target's RSS and CPU, then probe every
100 ms until its latency is back within `recovery_factor` x the baseline. The target
sheds what it cannot serve with 503 (MAX_CONCURRENCY, see authbench/infra/serve.py).

measure.py drives the targets, result.py turns raw figures into a row, render.py
shows the rows; the command is authbench/commands/bench.py.
"""
