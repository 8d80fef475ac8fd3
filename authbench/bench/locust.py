"""`authbench bench-locust`: is the load generator the bottleneck? Locust against wrk.

Both drive GET /noauth of one target at the same connection count, interleaved
over rounds; the ratio of Locust's req/s to wrk's tells how much of the server's
capacity Locust can actually use on this machine.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.data.load import locust_row
from authbench.bench.wrk import run_wrk
from authbench.infra.launcher import TargetProcess
from authbench.run.cell import Cell
from authbench.run.locustrun import run_locust


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


def compare_with_wrk(connections: int, seconds: float, rounds: int,
                     workers: Sequence[int]) -> dict[str, Any]:
    """Rounds of wrk then Locust (at each worker count) on one target; the median ratios."""
    results: dict[str, Any] = {"connections": connections, "seconds": seconds, "rounds": []}
    with TargetProcess({"AUTH_MODE": "none"}) as target:
        url = target.url
        for number in range(1, rounds + 1):
            run_wrk(url + "/noauth", 2, connections)  # warm-up
            wrk = run_wrk(url + "/noauth", round(seconds), connections)
            row: dict[str, Any] = {"wrk_rps": wrk.rps}
            for count in workers:
                rps, warnings = locust_rps(url, connections, seconds, count)
                row[f"locust_w{count}_rps"] = rps
                row[f"locust_w{count}_cpu_warnings"] = warnings
            results["rounds"].append(row)
            print(f"round {number}: " + ", ".join(f"{k} {v:,.0f}" for k, v in row.items()),
                  flush=True)
    for count in workers:
        results[f"ratio_w{count}"] = statistics.median(_ratios(results, count))
    return results


def _ratios(results: dict[str, Any], workers: int) -> list[float]:
    return [r[f"locust_w{workers}_rps"] / r["wrk_rps"] for r in results["rounds"]]


def format_ratios(results: dict[str, Any], workers: Sequence[int]) -> list[str]:
    """A line per worker count: Locust's req/s over wrk's, median and per round."""
    lines = []
    for count in workers:
        label = "one process" if count == 0 else f"{count} workers"
        lines.append(f"Locust ({label}) / wrk at {results['connections']} connections: "
                     f"median {results[f'ratio_w{count}']:.2f} (rounds: "
                     f"{', '.join(f'{r:.2f}' for r in _ratios(results, count))})")
    return lines
