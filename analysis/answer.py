"""The answer a report opens with, as Markdown lines: cost first, then what the run varied.

1. cost per request (target + store CPU) per configuration, its interval, and its
   ratio to the floor; the order, with configurations this run cannot tell apart
   joined;
2. latency at equal offered load when the run has open-model windows at one rate for
   every configuration (quick's fixed-rate pass), else at this run's closed-loop load;
3. req/s, only where the target was what limited it;
then a choice table for each thing the run varied: algorithm, store, users, nodes,
live sessions.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.costs import cost_order, coverage, interval, order_text, sanity_warnings
from analysis.formatting import number
from analysis.openmodel import is_one_rate

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


def _limited(row: pd.Series) -> str:
    label = str(row["bottleneck"])
    if row["bottleneck_share"] < 1:
        label += f" ({100 * row['bottleneck_share']:.0f} % of repeats)"
    return label


def cost_lines(table: pd.DataFrame) -> list[str]:
    """The cost table, the order, and the run's reliability warnings."""
    if table.empty:
        return ["No configuration was measured."]
    lines = [*(f"**{w}**" for w in sanity_warnings(table))]
    lines += ["Cost per request: the CPU the target and the store spent per request over "
              "each measured window (every endpoint of the scenario counted), not wall "
              f"time; {_coverage(table)}.", "",
              f"Cheapest to dearest: {order_text(cost_order(table))}", "",
              "| configuration | cost µs/request | target µs | store µs | capacity vs floor "
              "| req/s per core | auth step CPU µs | store round trip µs (idle) | limited by |",
              "|---|---|---|---|---|---|---|---|---|"]
    for _, row in table.sort_values("server_cpu_us").iterrows():
        lines.append(
            f"| {row['key']} | {interval(row, 'server_cpu_us').text(1)} | "
            f"{interval(row, 'target_cpu_us').text(1)} | "
            f"{interval(row, 'store_cpu_us').text(1)} | "
            f"{interval(row, 'floor_ratio').text(2)} | {number(row['per_core_rps'], 0)} | "
            f"{number(row['auth_cpu_us'], 1)} | {number(row['store_rtt_us'], 1)} | "
            f"{_limited(row)} |")
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
             "| configuration | users | p50 ms | p99 ms | req/s | limited by |",
             "|---|---|---|---|---|---|"]
    for _, row in table.sort_values("server_cpu_us").iterrows():
        lines.append(f"| {row['key']} | {int(row['users'])} | "
                     f"{interval(row, 'p50_ms').text(2)} | {interval(row, 'p99_ms').text(2)} | "
                     f"{_closed_rps(row)} | {_limited(row)} |")
    return [*lines, ""]


def _closed_rps(row: pd.Series) -> str:
    return interval(row, "rps").text(0) if row["is_target_bound"] else \
        f"({interval(row, 'rps').text(0)}: not the target's capacity)"


def _ranged(load: pd.Series, column: str) -> str:
    """An equal_load_table figure with its range: '4.10 (3.50 to 4.50)'."""
    return (f"{number(load[column], 2)} ({number(load[f'{column}_low'], 2)} to "
            f"{number(load[f'{column}_high'], 2)})")


def equal_load_lines(table: pd.DataFrame, equal_load: pd.DataFrame) -> list[str]:
    """Latency of every configuration at the same offered rate, cheapest first."""
    lines = ["Latency at equal offered load: requests arrive on a fixed schedule whatever "
             "the answers take (open model), the same rate for every configuration, and "
             "latency counts from each request's intended send. Windows whose load "
             "generator did not deliver the rate are left out (and counted). req/s is the "
             "closed-loop windows' throughput, ranked only where the target was the "
             "bottleneck.", "",
             "| configuration | offered req/s | achieved req/s | p50 ms | p99 ms "
             "| windows (left out) | closed-loop req/s | limited by |",
             "|---|---|---|---|---|---|---|---|"]
    by_config = {str(row["key"]): row for _, row in table.iterrows()}
    order = list(table.sort_values("server_cpu_us")["key"])
    ranked = equal_load.assign(rank=[order.index(c) if c in order else len(order)
                                     for c in equal_load["config"]])
    for _, load in ranked.sort_values(["rank", "rate_offered"]).iterrows():
        closed = by_config.get(str(load["config"]))
        left_out = f" ({load['short']})" if load["short"] else ""
        p50, p99 = _ranged(load, "p50_ms"), _ranged(load, "p99_ms")
        lines.append(
            f"| {load['config']} at {load['rate_spec']} | {number(load['rate_offered'], 0)} | "
            f"{number(load['rate_achieved'], 0)} | {p50} | {p99} | {load['repeats']}"
            f"{left_out} | "
            f"{_closed_rps(closed) if closed is not None else ''} | "
            f"{_limited(closed) if closed is not None else ''} |")
    notes = sorted({note for notes in equal_load["notes"] for note in notes})
    if notes:
        more = f"; and {len(notes) - 3} more (the report's warnings list each window)" \
            if len(notes) > 3 else ""
        lines += ["", "Left out because the generator did not deliver the rate: "
                  + "; ".join(notes[:3]) + more + "."]
    return [*lines, ""]


def _varied(table: pd.DataFrame, column: str, within: list[str]) -> pd.DataFrame:
    """Rows of groups (same `within`) in which `column` takes more than one value."""
    if table.empty:
        return table
    keep = table.groupby(within, dropna=False)[column].transform("nunique") > 1
    return table[keep]


def _equal_load_p99(equal_load: pd.DataFrame, key: str) -> str:
    """The configuration's p99 at the run's one offered rate, with its range."""
    rows = equal_load[equal_load["config"] == key]
    if rows.empty or not rows["repeats"].iloc[0]:
        return "-"
    return _ranged(rows.iloc[0], "p99_ms")


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
    latency = ("p50 ms (closed loop) | p99 ms" if rated is None else
               f"p99 ms at {number(rated['rate_offered'].median(), 0)} req/s offered")
    lines = ["### Algorithm choice", "",
             f"| configuration | algorithm | cost µs/request | capacity vs floor | {latency} "
             "| token bytes | sign µs (in-process) | verifying needs |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if rated is None else "")]
    for _, row in varied.sort_values("server_cpu_us").iterrows():
        fact = facts[facts["key"] == row["key"]]
        size = fact["credential_bytes"].max() if len(fact) else math.nan
        sign = fact["sign_us"].median() if len(fact) and "sign_us" in fact else math.nan
        needs = SHARED_NEEDS if str(row["alg"]).startswith("HS") else ASYMMETRIC_NEEDS
        latencies = _equal_load_p99(rated, str(row["key"])) if rated is not None else \
            f"{interval(row, 'p50_ms').text(2)} | {interval(row, 'p99_ms').text(2)}"
        lines.append(f"| {row['key']} | {row['alg']} | {interval(row, 'server_cpu_us').text(1)}"
                     f" | {interval(row, 'floor_ratio').text(2)} | {latencies} | "
                     f"{number(size, 0)} | {number(sign, 1)} | {needs} |")
    return [*lines, ""]


def store_lines(table: pd.DataFrame) -> list[str]:
    """Store choice: what each store adds per request, in CPU and in round trip."""
    varied = _varied(table[table["mode"] != "none"], "store",
                     ["mode", "revocation", "users", "nodes", "scenario"])
    if varied.empty:
        return []
    lines = ["### Store choice", "",
             "| configuration | store | cost µs/request | target µs | store µs "
             "| store round trip µs (idle) | p99 ms | limited by |",
             "|---|---|---|---|---|---|---|---|"]
    for _, row in varied.sort_values(["mode", "server_cpu_us"]).iterrows():
        lines.append(f"| {row['key']} | {row['store']} | "
                     f"{interval(row, 'server_cpu_us').text(1)} | "
                     f"{interval(row, 'target_cpu_us').text(1)} | "
                     f"{interval(row, 'store_cpu_us').text(1)} | "
                     f"{number(row['store_rtt_us'], 1)} | {interval(row, 'p99_ms').text(2)} | "
                     f"{_limited(row)} |")
    return [*lines, ""]


def axis_lines(table: pd.DataFrame, column: str, title: str) -> list[str]:
    """Users, nodes or live sessions: the figures at each value the run tried."""
    varied = _varied(table, column, ["mode", "store", "alg", "revocation", "scenario"])
    if varied.empty:
        return []
    lines = [f"### {title}", "",
             f"| configuration | {column} | cost µs/request | req/s | p50 ms | p99 ms "
             "| limited by |", "|---|---|---|---|---|---|---|"]
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
                     f"{_limited(row)} |")
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
            *store_lines(table), *axis_lines(table, "users", "Users"),
            *axis_lines(table, "nodes", "Nodes"),
            *axis_lines(table, "scale", "Live sessions in the store")]
