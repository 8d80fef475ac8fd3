"""`authbench bench-locust`: is the load generator the bottleneck? Locust against wrk.

Both drive GET /noauth of one target at the same connection count, interleaved
over rounds; the ratio of Locust's req/s to wrk's tells how much of the server's
capacity Locust can actually use on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from analysis.load import locust_row
from authbench.bench.wrk import run_wrk
from authbench.infra.launcher import TargetProcess
from authbench.run.locustrun import run_locust
from authbench.run.suite import Cell


def locust_rps(url: str, connections: int, seconds: float, workers: int) -> tuple[float, int]:
    """Locust's req/s on /noauth (FastHttpUser, one connection per user), CPU warnings."""
    cell = Cell(mode="none", scenario="floor", users=connections, duration=seconds, warmup=2,
                workers=workers)
    with tempfile.TemporaryDirectory() as folder:
        outcome = run_locust(cell, url, Path(folder))
        row = locust_row(Path(folder) / "locust_stats.csv", "Aggregated")
        if outcome.exit_code != 0 or row is None:
            raise RuntimeError(f"locust failed: {outcome.log_tail}")
        return float(row["Requests/s"]), outcome.cpu_warnings


def cmd_bench_locust(args: argparse.Namespace) -> int:
    """Compare Locust's and wrk's maximum req/s on /noauth at the same connections."""
    results: dict[str, Any] = {"connections": args.connections, "seconds": args.seconds,
                               "rounds": []}
    with TargetProcess({"AUTH_MODE": "none"}) as target:
        url = target.url
        for number in range(1, args.rounds + 1):
            run_wrk(url + "/noauth", 2, args.connections)  # warm-up
            wrk = run_wrk(url + "/noauth", round(args.seconds), args.connections)
            row: dict[str, Any] = {"wrk_rps": wrk.rps}
            for workers in args.workers:
                rps, warnings = locust_rps(url, args.connections, args.seconds, workers)
                row[f"locust_w{workers}_rps"] = rps
                row[f"locust_w{workers}_cpu_warnings"] = warnings
            results["rounds"].append(row)
            print(f"round {number}: " + ", ".join(f"{k} {v:,.0f}" for k, v in row.items()),
                  flush=True)
    for workers in args.workers:
        ratios = [r[f"locust_w{workers}_rps"] / r["wrk_rps"] for r in results["rounds"]]
        label = "one process" if workers == 0 else f"{workers} workers"
        print(f"Locust ({label}) / wrk at {args.connections} connections: "
              f"median {statistics.median(ratios):.2f} (rounds: "
              f"{', '.join(f'{r:.2f}' for r in ratios)})")
        results[f"ratio_w{workers}"] = statistics.median(ratios)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))
    return 0


def add_parser(sub: Any) -> None:
    """Register `authbench bench-locust`."""
    parser = sub.add_parser("bench-locust", help=cmd_bench_locust.__doc__,
                            description=cmd_bench_locust.__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="Locust worker counts to try (0: one local process)")
    parser.add_argument("--output", help="also write the figures as JSON here")
    parser.set_defaults(handler=cmd_bench_locust)
