"""What being able to revoke costs per request: each configuration against JWT without
revocation that ran the same scenario, users and nodes.

Pure functions of analysis.data.load.load_run's tidy frame. The figures are the answer's:
analysis.cost.table.cost_table (closed-loop windows, the median over repeats with its range),
so a configuration costs the same here as in the answer. Latency is at equal offered
load (analysis.latency.equal_load.equal_load_table) when every configuration ran at one rate,
else at the closed-loop load, and the column says which.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.cost.table import (
    COMPARABLE,
    cost_table,
    interval,
    limited_text,
    ordered,
    rps_text,
)
from analysis.latency.equal_load import equal_load_table, is_one_rate
from analysis.report.formatting import number
from analysis.revocation.lag import strategy_label

# The baseline for a configuration: JWT without revocation with the same algorithm and
# library, where the run has one (a session has an algorithm too: the suite's default).
TWIN = ("alg", "lib")


def _candidates(costs: pd.DataFrame) -> pd.DataFrame:
    """The cost table's configurations a revocation check can be priced on."""
    table = costs[costs["mode"] != "none"]  # no credential, nothing to revoke
    if "api" in table:  # an API's variants have no JWT-without-revocation twin
        table = table[table["api"].fillna("") == ""]
    if (table["scenario"] == "read").any():  # plain reads when the run has them: no probes
        table = table[table["scenario"] == "read"]
    return table


def _baseline(group: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    """JWT without revocation in the row's group, the same algorithm and library if any."""
    base = group[(group["mode"] == "jwt") & (group["revocation"] == "none")]
    twin = base
    for column in TWIN:
        if column in base:
            twin = twin[twin[column] == row.get(column)]
    if len(twin):
        return twin.iloc[0]
    return base.iloc[0] if len(base) == 1 else None


def overhead_table(frame: pd.DataFrame, costs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per configuration, in the answer's order, against JWT without revocation
    at the same scenario, users, nodes and token lifetime. costs: the run's cost_table,
    when the caller has it.

    Columns: key, strategy, scenario, users, nodes, cost_us (with cost_low, cost_high and
    the cost_table row's repeats), extra_us (median minus the baseline's median; NaN
    without a baseline), auth_cpu_us, auth_p50_us, rps, rps_ratio, is_target_bound,
    bottleneck, p99_ms (closed loop).
    """
    table = cost_table(frame) if costs is None else costs
    if table.empty or "scenario" not in table:
        return pd.DataFrame()
    table = _candidates(ordered(table))
    if table.empty:
        return pd.DataFrame()
    if "access_ttl" not in table:
        table = table.assign(access_ttl=0)
    # Short-lived tokens make readers log in again: never a baseline for long-lived ones.
    within = [*COMPARABLE, "access_ttl"]
    rows = []
    for _, group in table.fillna({"access_ttl": 0}).groupby(within, sort=False):
        for _, row in group.iterrows():
            base = _baseline(group, row)
            cost = interval(row, "server_cpu_us")
            base_cost = math.nan if base is None else float(base["server_cpu_us"])
            base_rps = math.nan if base is None else float(base["rps"])
            rows.append({
                "key": row["key"], "strategy": strategy_label(row.to_dict()),
                "scenario": row["scenario"], "users": row["users"], "nodes": row["nodes"],
                "cost_us": cost.median, "cost_low": cost.low, "cost_high": cost.high,
                "repeats": row["repeats"], "extra_us": cost.median - base_cost,
                "auth_cpu_us": row["auth_cpu_us"], "auth_p50_us": row["auth_p50_ms"] * 1000,
                "rps": row["rps"], "rps_ratio": float(row["rps"]) / base_rps
                if base_rps else math.nan,
                "is_target_bound": row["is_target_bound"], "bottleneck": row["bottleneck"],
                "bottleneck_share": row["bottleneck_share"],
                **{c: row[c] for c in ("rps_low", "rps_high", "p99_ms", "p99_ms_low",
                                       "p99_ms_high", "server_cpu_us", "server_cpu_us_low",
                                       "server_cpu_us_high")},
            })
    return pd.DataFrame(rows)


def _p99(row: pd.Series, equal_load: pd.DataFrame | None) -> str:
    """The row's p99: at the run's one fixed rate when it has one, else closed loop."""
    if equal_load is None:
        return interval(row, "p99_ms").text(2)
    at = equal_load[equal_load["config"] == row["key"]]
    if at.empty or not at["repeats"].iloc[0]:
        return "-"
    first = at.iloc[0]
    return (f"{number(first['p99_ms'], 2)} ({number(first['p99_ms_low'], 2)} to "
            f"{number(first['p99_ms_high'], 2)})")


def overhead_lines(frame: pd.DataFrame, costs: pd.DataFrame | None = None,
                   equal_load: pd.DataFrame | None = None) -> list[str]:
    """The cost-of-the-check table for report.md: the answer's cost figures."""
    table = overhead_table(frame, costs)
    if table.empty or table["extra_us"].isna().all():
        return []
    rates = equal_load_table(frame) if equal_load is None else equal_load
    rated = rates if is_one_rate(rates) else None
    latency = "p99 ms (closed loop)" if rated is None else \
        f"p99 ms at {number(rated['rate_offered'].median(), 0)} req/s offered (fixed rate)"
    lines = ["The per-request cost of being able to revoke: each configuration against JWT "
             "without revocation that ran the same scenario, users and nodes. Cost is CPU "
             "per request, target plus store, over the closed-loop windows: the answer's "
             "figures (median over repeats, the range in brackets). The extra is the "
             "difference of the medians. The auth step's own CPU excludes its awaited store "
             "calls; its wall time (Server-Timing) includes waiting behind other requests "
             "under load, so it is latency, not cost.", "",
             "| strategy | configuration | cost µs/request (closed loop) "
             "| extra µs vs no check | auth step CPU µs | auth wall p50 µs "
             f"| req/s (closed loop) | {latency} | limited by (closed loop) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        lines.append(f"| {r['strategy']} | {r['key']} | "
                     f"{interval(r, 'server_cpu_us').text(1)} | {number(r['extra_us'], 1)} | "
                     f"{number(r['auth_cpu_us'], 1)} | {number(r['auth_p50_us'], 0)} | "
                     f"{rps_text(r)} | {_p99(r, rated)} | {limited_text(r)} |")
    return [*lines, ""]
