"""The answer a report opens with, as Markdown lines: cost first, then what the run varied.

1. cost per request (target + store CPU, closed-loop windows: analysis.cost.table.cost_table)
   per configuration, its interval, and its ratio to the floor; the order within each
   group of configurations that ran the same scenario, users and nodes, with
   configurations this run cannot tell apart joined;
2. latency at equal offered load when the run has open-model windows at one rate for
   every configuration (quick's fixed-rate pass), else at this run's closed-loop load;
3. req/s, only where the target was what limited it;
then a choice table for each thing the run varied: algorithm, store, users, nodes,
live sessions. Every table lists configurations in the answer's order
(analysis.cost.table.ordered) and says which windows each figure comes from.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from analysis.cost.table import (
    coverage,
    interval,
    limited_text,
    order_lines,
    ordered,
    rps_text,
    sanity_warnings,
)
from analysis.latency.equal_load import is_one_rate
from analysis.report.formatting import number

ASYMMETRIC_NEEDS = "a public key (JWKS): any service verifies, only the issuer signs"
SHARED_NEEDS = "a shared secret: every service that verifies can also sign"


def _coverage(table: pd.DataFrame) -> str:
    repeats = int(table["repeats"].min()) if not table.empty else 0
    if repeats < 2:
        return ("one repeat per configuration, so no interval: run more repeats before "
                "trusting a difference")
    share = 100 * coverage(repeats)
    return (f"median over {repeats} repeats, in brackets the range over them (it holds the "
            f"true median with probability {share:.0f} %); ≈ joins configurations whose "
            "ranges overlap, which this run cannot tell apart")


def cost_lines(table: pd.DataFrame) -> list[str]:
    """The cost table, the order, and the run's reliability warnings."""
    if table.empty:
        return ["No configuration was measured."]
    lines = [*(f"**{w}**" for w in sanity_warnings(table))]
    lines += ["Cost per request: the CPU the target and the store spent per request over "
              "each measured closed-loop window (every endpoint of the scenario counted), not "
              f"wall time; {_coverage(table)}. Costs rank only configurations that ran the "
              "same scenario, users and nodes.", "",
              *(part for line in order_lines(table) for part in (line, "")),
              "| configuration | cost µs/request (closed loop) | target µs | store µs "
              "| capacity vs floor "
              "| req/s per core | auth step CPU µs | store round trip µs (idle) | limited by |",
              "|---|---|---|---|---|---|---|---|---|"]
    for _, row in ordered(table).iterrows():
        lines.append(
            f"| {row['key']} | {interval(row, 'server_cpu_us').text(1)} | "
            f"{interval(row, 'target_cpu_us').text(1)} | "
            f"{interval(row, 'store_cpu_us').text(1)} | "
            f"{interval(row, 'floor_ratio').text(2)} | {number(row['per_core_rps'], 0)} | "
            f"{number(row['auth_cpu_us'], 1)} | {number(row['store_rtt_us'], 1)} | "
            f"{limited_text(row)} |")
    lines += ["", "capacity vs floor: the floor's cost over this configuration's, per repeat "
              "(1.00 = as cheap as no auth). req/s per core: 10^6 / cost, what one core of "
              "target and store could serve. The auth step's CPU excludes the time its store "
              "calls were awaited; the round trip is one lookup on an idle store.", ""]
    return lines


def latency_lines(table: pd.DataFrame, equal_load: pd.DataFrame | None = None) -> list[str]:
    """Latency at equal offered load (open model) when the run has it, else at this run's
    closed-loop load; req/s where the target was the limit."""
    if table.empty:
        return []
    if equal_load is not None and is_one_rate(equal_load):
        return equal_load_lines(table, equal_load)
    lines = ["Latency and throughput at this run's load (closed loop: each user waits for "
             "its answer, so latency here depends on the load generator too). req/s ranks "
             "configurations only where the target was the bottleneck; elsewhere it says "
             "what limited it.", "",
             "| configuration | users | p50 ms (closed loop) | p99 ms (closed loop) "
             "| req/s (closed loop) | limited by |",
             "|---|---|---|---|---|---|"]
    for _, row in ordered(table).iterrows():
        lines.append(f"| {row['key']} | {int(row['users'])} | "
                     f"{interval(row, 'p50_ms').text(2)} | {interval(row, 'p99_ms').text(2)} | "
                     f"{rps_text(row)} | {limited_text(row)} |")
    return [*lines, ""]


def _ranged(load: pd.Series, column: str) -> str:
    """An equal_load_table figure with its range: '4.10 (3.50 to 4.50)'."""
    return (f"{number(load[column], 2)} ({number(load[f'{column}_low'], 2)} to "
            f"{number(load[f'{column}_high'], 2)})")


RANKED_PERCENTILE = "p90_ms"  # the steadier equal-load figure between runs


def equal_load_lines(table: pd.DataFrame, equal_load: pd.DataFrame) -> list[str]:
    """Latency of every configuration at the same offered rate, in the answer's order."""
    lines = ["Latency at equal offered load: requests arrive on a fixed schedule whatever "
             "the answers take (open model), the same rate for every configuration, and "
             "latency counts from each request's intended send. p90 is the figure to "
             "compare configurations by: it is steadier between runs than p99, which rests "
             "on the slowest few dozen requests of the run. Windows whose load generator "
             "did not deliver the rate, or in which another program took the CPU, are left "
             "out (and counted). req/s is the closed-loop windows' throughput, ranked only "
             "where the target was the bottleneck.", "",
             "| configuration | offered req/s | achieved req/s | p50 ms (fixed rate) "
             "| p90 ms (fixed rate) | p99 ms (fixed rate) | windows (left out) "
             "| req/s (closed loop) | limited by (closed loop) |",
             "|---|---|---|---|---|---|---|---|---|"]
    by_config = {str(row["key"]): row for _, row in table.iterrows()}
    order = list(ordered(table)["key"])
    ranked = equal_load.assign(rank=[order.index(c) if c in order else len(order)
                                     for c in equal_load["config"]])
    for _, load in ranked.sort_values(["rank", "rate_offered"]).iterrows():
        closed = by_config.get(str(load["config"]))
        left_out = f" ({load['short']})" if load["short"] else ""
        p50, p90, p99 = (_ranged(load, c) for c in ("p50_ms", "p90_ms", "p99_ms"))
        lines.append(
            f"| {load['config']} at {load['rate_spec']} | {number(load['rate_offered'], 0)} | "
            f"{number(load['rate_achieved'], 0)} | {p50} | {p90} | {p99} | {load['repeats']}"
            f"{left_out} | "
            f"{rps_text(closed) if closed is not None else ''} | "
            f"{limited_text(closed) if closed is not None else ''} |")
    bases = sorted({re.sub(r"the \d+ windows", "its windows", b)
                    for b in equal_load.get("latency_basis", []) if isinstance(b, str)})
    if bases:
        lines += ["", "Each configuration's percentiles: " + "; or ".join(bases) + "."]
    notes = sorted({note for notes in equal_load["notes"] for note in notes})
    if notes:
        more = f"; and {len(notes) - 3} more (the report's warnings list each window)" \
            if len(notes) > 3 else ""
        lines += ["", "Left out: " + "; ".join(notes[:3]) + more + "."]
    return [*lines, ""]


def _varied(table: pd.DataFrame, column: str, within: list[str]) -> pd.DataFrame:
    """Rows of groups (same `within`) in which `column` takes more than one value."""
    if table.empty:
        return table
    keep = table.groupby(within, dropna=False)[column].transform("nunique") > 1
    return table[keep]


def _equal_load_p90(equal_load: pd.DataFrame, key: str) -> str:
    """The configuration's p90 at the run's one offered rate, with its interval."""
    rows = equal_load[equal_load["config"] == key]
    if rows.empty or not rows["repeats"].iloc[0]:
        return "-"
    return _ranged(rows.iloc[0], RANKED_PERCENTILE)


def algorithm_lines(table: pd.DataFrame, facts: pd.DataFrame,
                    equal_load: pd.DataFrame | None = None) -> list[str]:
    """Algorithm choice: cost, latency (at equal offered load when the run has it), token
    bytes, sign cost, what verifying needs."""
    tokens = table[table["mode"].isin(["jwt", "hybrid"])]
    varied = _varied(tokens, "alg", ["mode", "store", "revocation", "users", "nodes",
                                     "scenario"])
    if varied.empty:
        return []
    rated = equal_load if equal_load is not None and is_one_rate(equal_load) else None
    latency = ("p50 ms (closed loop) | p99 ms (closed loop)" if rated is None else
               f"p90 ms at {number(rated['rate_offered'].median(), 0)} req/s offered "
               "(fixed rate)")
    lines = ["### Algorithm choice", "",
             f"| configuration | algorithm | cost µs/request (closed loop) | capacity vs floor "
             f"| {latency} "
             "| token bytes | sign µs (in-process) | verifying needs |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if rated is None else "")]
    for _, row in ordered(varied).iterrows():
        fact = facts[facts["key"] == row["key"]]
        size = fact["credential_bytes"].max() if len(fact) else math.nan
        sign = fact["sign_us"].median() if len(fact) and "sign_us" in fact else math.nan
        needs = SHARED_NEEDS if str(row["alg"]).startswith("HS") else ASYMMETRIC_NEEDS
        latencies = _equal_load_p90(rated, str(row["key"])) if rated is not None else \
            f"{interval(row, 'p50_ms').text(2)} | {interval(row, 'p99_ms').text(2)}"
        lines.append(f"| {row['key']} | {row['alg']} | {interval(row, 'server_cpu_us').text(1)}"
                     f" | {interval(row, 'floor_ratio').text(2)} | {latencies} | "
                     f"{number(size, 0)} | {number(sign, 1)} | {needs} |")
    return [*lines, ""]


def store_lines(table: pd.DataFrame, equal_load: pd.DataFrame | None = None) -> list[str]:
    """Store choice: what each store adds per request, in CPU and in round trip; p90 at
    equal offered load when the run has it, else p99 at its closed-loop load."""
    varied = _varied(table[table["mode"] != "none"], "store",
                     ["mode", "revocation", "users", "nodes", "scenario"])
    if varied.empty:
        return []
    rated = equal_load if equal_load is not None and is_one_rate(equal_load) else None
    latency = "p99 ms (closed loop)" if rated is None else \
        f"p90 ms at {number(rated['rate_offered'].median(), 0)} req/s offered (fixed rate)"
    lines = ["### Store choice", "",
             "| configuration | store | cost µs/request (closed loop) | target µs | store µs "
             f"| store round trip µs (idle) | {latency} | limited by (closed loop) |",
             "|---|---|---|---|---|---|---|---|"]
    for _, row in ordered(varied).iterrows():
        p99 = interval(row, "p99_ms").text(2) if rated is None else \
            _equal_load_p90(rated, str(row["key"]))
        lines.append(f"| {row['key']} | {row['store']} | "
                     f"{interval(row, 'server_cpu_us').text(1)} | "
                     f"{interval(row, 'target_cpu_us').text(1)} | "
                     f"{interval(row, 'store_cpu_us').text(1)} | "
                     f"{number(row['store_rtt_us'], 1)} | {p99} | "
                     f"{limited_text(row)} |")
    return [*lines, ""]


def axis_lines(table: pd.DataFrame, column: str, title: str) -> list[str]:
    """Users, nodes or live sessions: the figures at each value the run tried."""
    varied = _varied(table, column, ["mode", "store", "alg", "revocation", "scenario"])
    if varied.empty:
        return []
    lines = [f"### {title}", "",
             f"| configuration | {column} | cost µs/request (closed loop) | req/s (closed loop) "
             "| p50 ms (closed loop) | p99 ms (closed loop) | limited by |",
             "|---|---|---|---|---|---|---|"]
    for _, row in varied.sort_values(["mode", "store", "alg", column]).iterrows():
        mark = ""
        if column == "nodes" and row["is_oversubscribed"]:
            mark = " (more nodes than the targets' cores: they shared CPUs)"
        rps = interval(row, "rps").text(0)
        if not row["is_target_bound"]:
            rps += " (not target-bound)"
        lines.append(f"| {row['key']} | {int(row[column]):,}{mark} | "
                     f"{interval(row, 'server_cpu_us').text(1)} | {rps} | "
                     f"{interval(row, 'p50_ms').text(2)} | {interval(row, 'p99_ms').text(2)} | "
                     f"{limited_text(row)} |")
    return [*lines, ""]


def answer_lines(table: pd.DataFrame, facts: pd.DataFrame,
                 equal_load: pd.DataFrame | None = None) -> list[str]:
    """The whole answer section (without its heading)."""
    if table.empty and equal_load is not None and not equal_load.empty:
        return ["No closed-loop window, so no cost per request: this run measured open-model "
                "load only. Its latency against offered load is below.", ""]
    if table.empty:
        return cost_lines(table)
    return [*cost_lines(table), *latency_lines(table, equal_load),
            *algorithm_lines(table, facts, equal_load),
            *store_lines(table, equal_load), *axis_lines(table, "users", "Users"),
            *axis_lines(table, "nodes", "Nodes"),
            *axis_lines(table, "scale", "Live sessions in the store")]
