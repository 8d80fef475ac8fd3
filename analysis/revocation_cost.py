"""What being able to revoke costs per request: each cell against JWT without revocation.

Pure functions of analysis.load.load_run's tidy frame: cells of one run share the
load, so the difference at the hot path is the revocation check (plus, for sessions,
the session read).
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.costs import median_of
from analysis.endpoints import ME
from analysis.formatting import number
from analysis.revocation import strategy_label


def overhead_table(frame: pd.DataFrame) -> pd.DataFrame:
    """GET /api/me per strategy, against JWT without revocation at the same users and
    nodes; cells of the read scenario when the run has any (no probe traffic)."""
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)]
    if hot.empty or "scenario" not in hot:
        return pd.DataFrame()
    hot = hot[hot["mode"] != "none"]  # no credential, nothing to revoke
    if "api" in hot:  # an API's variants have no JWT-without-revocation twin to compare with
        hot = hot[hot["api"].fillna("") == ""]
    if (hot["scenario"] == "read").any():  # plain reads when the run has them: no probes
        hot = hot[hot["scenario"] == "read"]
    rows = []
    if "access_ttl" not in hot:
        hot = hot.assign(access_ttl=0)
    # Short-lived tokens make readers log in again: never a baseline for long-lived ones.
    for (_scenario, users, nodes, _ttl), group in hot.groupby(
            ["scenario", "users", "nodes", "access_ttl"]):
        base = group[(group["mode"] == "jwt") & (group["revocation"] == "none")]
        base_cost, base_rps = median_of(base, "server_cpu_us"), median_of(base, "rps")
        labels = [strategy_label(row.to_dict()) for _, row in group.iterrows()]
        for strategy, items in group.assign(strategy=labels).groupby("strategy", sort=False):
            cost, rps = median_of(items, "server_cpu_us"), median_of(items, "rps")
            rows.append({"strategy": strategy, "users": users, "nodes": nodes,
                         "cost_us": cost, "auth_cpu_us": median_of(items, "auth_cpu_mean_us"),
                         "auth_p50_us": median_of(items, "auth_p50_ms") * 1000,
                         "extra_us": cost - base_cost,
                         "rps": rps, "rps_ratio": rps / base_rps if base_rps else math.nan,
                         "p99_ms": median_of(items, "p99_ms")})
    return pd.DataFrame(rows)


def overhead_lines(frame: pd.DataFrame) -> list[str]:
    """The cost-of-the-check table for report.md."""
    table = overhead_table(frame)
    if table.empty or table["extra_us"].isna().all():
        return []
    lines = ["The per-request cost of being able to revoke: each cell of this run against "
             "JWT without revocation at the same users and nodes. Cost is CPU per request, "
             "target plus store (medians over repeats); the auth step's own CPU excludes its "
             "awaited store calls, and its wall time (Server-Timing) includes waiting behind "
             "other requests under load, so it is latency, not cost.", "",
             "| strategy | users | nodes | cost µs/request | extra µs vs no check "
             "| auth step CPU µs | auth wall p50 µs | req/s | req/s vs none | p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['strategy']} | {r['users']} | {r['nodes']} | "
                     f"{number(r['cost_us'], 1)} | {number(r['extra_us'], 1)} | "
                     f"{number(r['auth_cpu_us'], 1)} | {number(r['auth_p50_us'], 0)} | "
                     f"{number(r['rps'], 0)} | {number(r['rps_ratio'], 2)} | "
                     f"{number(r['p99_ms'], 1)} |")
    return [*lines, ""]
