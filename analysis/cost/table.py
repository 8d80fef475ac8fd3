"""What a request costs the server, with its spread: the figures the answer rests on.

Cost is CPU, not wall time: under load, the time around an awaited store call
includes waiting behind other requests. A configuration's cost per request is the
target's CPU plus the store's CPU, each divided by the requests of the same window.

Every figure is the median over repeats with an interval, the range [min, max]
over repeats: with n repeats it covers the true median with probability
1 - 2 / 2^n (75 % for 3, 94 % for 5). Two configurations whose intervals overlap
are indistinguishable in this run. Ratios to the floor (mode none) are taken per
repeat, whose windows ran seconds apart, so slow drift of the machine cancels.

cost_table is the one place a configuration's cost and req/s come from: closed-loop
windows only (a fixed-rate window's CPU per request is another measurement). Costs rank
only configurations that ran the same scenario, users and nodes (COMPARABLE): ordered
gives the answer's order, which every table and chart of a report follows.

Pure functions of analysis.data.load.load_run's tidy frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.data.endpoints import HOT_PATHS
from analysis.report.formatting import number

COMPARABLE = ("scenario", "users", "nodes")  # what configurations ranked by cost share
CLOSED_LOOP = "closed loop"  # the windows cost, req/s and closed-loop latency come from
SATURATED = 0.85  # utilisation at which a component is the bottleneck
CORE_BUSY = 0.90  # a pinned target's cores this busy were full, whoever filled them
SHARED_CORE = "target's cores, shared"
NOTHING_SATURATED = "nothing saturated"
BOTTLENECKS = ("target", "load generator", "store", SHARED_CORE, NOTHING_SATURATED)
# A window in which more of the machine's CPU than this was busy with work none of the
# measured processes did (other programs; the kernel's loopback work is ~5 %) was
# disturbed: its cost holds up, its latency does not.
DISTURBED = 0.15


def bottleneck(target: float, generator: float, store: float,
               target_core_busy: float = math.nan) -> str:
    """Which component limited a window: the most utilised one at or above SATURATED.

    When none is, but a pinned target's cores were full anyway, other work shared
    them (a store or another process scheduled there, the kernel's network work):
    SHARED_CORE, and the window's req/s is not the target's capacity.
    NOTHING_SATURATED: the closed loop's users (or the store's round trips) set the pace.
    """
    utilisation = {"target": target, "load generator": generator, "store": store}
    known = {k: v for k, v in utilisation.items() if not math.isnan(v)}
    if not known:
        return "unknown"
    name, top = max(known.items(), key=lambda item: item[1])
    if top >= SATURATED:
        return name
    if not math.isnan(target_core_busy) and target_core_busy >= CORE_BUSY:
        return SHARED_CORE
    return NOTHING_SATURATED


def coverage(repeats: int) -> float:
    """How often [min, max] of n repeats holds the true median: 1 - 2 / 2^n (NaN for 0)."""
    return 1 - 2 * 0.5 ** repeats if repeats else math.nan


@dataclass(frozen=True)
class Interval:
    """A median over repeats and the range [low, high] around it."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Interval:
        clean = sorted(v for v in values if not math.isnan(v))
        if not clean:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(float(pd.Series(clean).median()), clean[0], clean[-1], len(clean))

    @property
    def coverage(self) -> float:
        """How often [min, max] of its repeats holds the true median (see coverage)."""
        return coverage(self.n)

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def text(self, digits: int = 0, scale: float = 1.0) -> str:
        """'123 (118 to 130)'; one repeat gives no range."""
        if self.n == 0:
            return "-"
        middle = number(self.median * scale, digits)
        if self.n == 1:
            return middle
        low, high = number(self.low * scale, digits), number(self.high * scale, digits)
        return f"{middle} ({low} to {high})"


def hot_rows(frame: pd.DataFrame, is_open: bool = False) -> pd.DataFrame:
    """One row per measured window: the endpoint the scenario is about. Closed-loop
    windows only (cost, capacity, bottleneck), or with is_open those under a rate."""
    if frame.empty or "endpoint" not in frame:
        return frame
    ok = frame[frame["status"] == "ok"]
    if "rate_spec" in ok:
        ok = ok[(ok["rate_spec"].fillna("") != "") == is_open]
    if "scenario" in ok and (ok["scenario"] != "revocation").any():
        # A probe's window holds its logins (a KDF each): it measures lag, not cost.
        ok = ok[ok["scenario"] != "revocation"]
    picked = []
    for _, group in ok.groupby("cell", sort=True):
        for endpoint in HOT_PATHS:
            rows = group[group["endpoint"] == endpoint]
            if len(rows):
                picked.append(rows.iloc[0])
                break
    return pd.DataFrame(picked) if picked else ok.iloc[0:0]


def with_floor_ratio(hot: pd.DataFrame) -> pd.DataFrame:
    """hot_rows plus floor_ratio: the floor's cost over each window's, the floor (mode none,
    same users, nodes and scenario) taken from the same repeat, or its median when that
    repeat has none; NaN without a floor."""
    if hot.empty or "server_cpu_us" not in hot:
        return hot.assign(floor_ratio=math.nan)
    floor = hot[hot["mode"] == "none"]
    ratios = []
    for _, row in hot.iterrows():
        same = floor[(floor["users"] == row["users"]) & (floor["nodes"] == row["nodes"])
                     & (floor["scenario"] == row["scenario"])]
        by_repeat = same[same["repeat"] == row["repeat"]]["server_cpu_us"]
        base = float(by_repeat.iloc[0]) if len(by_repeat) else (
            float(same["server_cpu_us"].median()) if len(same) else math.nan)
        ratios.append(base / float(row["server_cpu_us"]))
    return hot.assign(floor_ratio=ratios)


def interval(row: pd.Series, column: str) -> Interval:
    """The Interval stored flat in a cost_table row as column, column_low, column_high."""
    median = float(row[column])
    repeats = 0 if math.isnan(median) else int(row["repeats"])  # NaN: not measured
    return Interval(median, float(row[f"{column}_low"]), float(row[f"{column}_high"]), repeats)


def _flat(name: str, value: Interval) -> dict[str, float]:
    return {name: value.median, f"{name}_low": value.low, f"{name}_high": value.high}


def cost_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: cost per request and the rest, each with its interval.

    Closed-loop windows only (hot_rows). Columns: key, config, mode, store, alg, lib,
    revocation, logout, access_ttl, api, scenario, users, nodes, scale, repeats;
    target_cpu_us, store_cpu_us, server_cpu_us, floor_ratio, rps, p50_ms,
    p99_ms (each with _low and _high); per_core_rps (1e6 / server µs), auth_cpu_us,
    auth_p50_ms (Server-Timing wall time), store_rtt_us, store_wall_p50_us, bottleneck
    (the most common over repeats), bottleneck_share, is_target_bound (every repeat),
    is_oversubscribed.
    """
    hot = hot_rows(frame)
    if hot.empty or "server_cpu_us" not in hot:
        return pd.DataFrame()
    hot = with_floor_ratio(hot)
    rows = []
    for key, group in hot.groupby("key", sort=False):
        first = group.iloc[0]
        labels = group["bottleneck"].fillna("unknown").value_counts()
        server = Interval.of(group["server_cpu_us"])
        row = {
            "key": key, "config": first.get("config", key),
            **{c: first.get(c) for c in ("mode", "store", "alg", "lib", "revocation", "logout",
                                         "access_ttl", "api", "scenario", "users", "nodes",
                                         "scale")},
            "repeats": len(group),
            **_flat("target_cpu_us", Interval.of(group["target_cpu_us"])),
            **_flat("store_cpu_us", Interval.of(group["store_cpu_us"])),  # NaN: no store
            **_flat("server_cpu_us", server),
            **_flat("floor_ratio", Interval.of(group["floor_ratio"])),
            **_flat("rps", Interval.of(group["rps"])),
            **_flat("p50_ms", Interval.of(group["p50_ms"])),
            **_flat("p99_ms", Interval.of(group["p99_ms"])),
            "per_core_rps": 1e6 / server.median if server.median else math.nan,
            "auth_cpu_us": median_of(group, "auth_cpu_mean_us"),
            "auth_p50_ms": median_of(group, "auth_p50_ms"),
            "store_rtt_us": median_of(group, "store_rtt_us"),
            "store_wall_p50_us": median_of(group, "store_wall_p50_us"),
            "bottleneck": str(labels.index[0]),
            "bottleneck_share": float(labels.iloc[0] / len(group)),
            "is_target_bound": bool((group["bottleneck"] == "target").all()),
            "is_oversubscribed": bool(group.get("is_oversubscribed", pd.Series([False])).any()),
            "disturbed_windows": int((group.get("foreign_cpu_share", pd.Series(dtype=float))
                                      > DISTURBED).sum()),
            "foreign_cpu_share": median_of(group, "foreign_cpu_share"),
            "foreign_cpu_share_max": float(group["foreign_cpu_share"].max())
            if "foreign_cpu_share" in group else math.nan,
            "measured_seconds": median_of(group, "measured_seconds"),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def median_of(frame: pd.DataFrame, column: str) -> float:
    """The median of a column's values, NaN when it has none (or no such column)."""
    if column not in frame:
        return math.nan
    values = frame[column].dropna()
    return float(values.median()) if len(values) else math.nan


def group_name(values: dict[str, Any]) -> str:
    """A comparable group's name: 'read scenario, 20 users, 1 node'."""
    parts = []
    for column, unit in (("scenario", ""), ("users", "user"), ("nodes", "node")):
        value = values.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if not unit:
            parts.append(f"{value} scenario")
        else:
            parts.append(f"{int(value):,} {unit}{'' if int(value) == 1 else 's'}")
    return ", ".join(parts)


def comparable_groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The configurations that ran the same scenario, users and nodes, each group with its
    name, every group cheapest first: the only sets a cost per request ranks."""
    if table.empty:
        return []
    columns = [c for c in COMPARABLE if c in table]
    if not columns:
        return [("", _cheapest_first(table))]
    return [(group_name(dict(zip(columns, values if isinstance(values, tuple) else (values,),
                                 strict=True))), _cheapest_first(group))
            for values, group in table.groupby(columns, sort=True, dropna=False)]


def _cheapest_first(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values(["server_cpu_us", "key"], kind="stable")


def ordered(table: pd.DataFrame) -> pd.DataFrame:
    """The cost table in the answer's order: group by group (comparable_groups), cheapest
    first within each. Every table and chart that lists configurations follows it."""
    groups = comparable_groups(table)
    return pd.concat([group for _, group in groups]) if groups else table


def answer_order(table: pd.DataFrame) -> list[str]:
    """The configurations' keys in the answer's order (ordered)."""
    return [str(key) for key in ordered(table)["key"]] if not table.empty else []


def cost_order(table: pd.DataFrame) -> list[list[str]]:
    """Configurations of one comparable group from cheapest to dearest, neighbours whose
    intervals overlap grouped. A table of several groups is refused: use cost_orders."""
    if table.empty:
        return []
    groups = comparable_groups(table)
    if len(groups) > 1:
        raise ValueError("configurations of different scenarios, users or nodes do not rank "
                         "by cost: " + "; ".join(name for name, _ in groups))
    ranks: list[list[str]] = []
    previous: Interval | None = None
    # A configuration whose CPU was not claimed (an API's, without a named process) has no
    # cost to rank by.
    for _, row in groups[0][1].dropna(subset=["server_cpu_us"]).iterrows():
        current = interval(row, "server_cpu_us")
        if previous is not None and current.overlaps(previous):
            ranks[-1].append(str(row["key"]))
        else:
            ranks.append([str(row["key"])])
        previous = current
    return ranks


def cost_orders(table: pd.DataFrame) -> list[tuple[str, list[list[str]]]]:
    """cost_order of each comparable group, with the group's name."""
    return [(name, cost_order(group)) for name, group in comparable_groups(table)]


def order_text(groups: list[list[str]]) -> str:
    """'a < b ≈ c < d': ≈ joins configurations this run cannot tell apart."""
    return " < ".join(" ≈ ".join(group) for group in groups)


def order_lines(table: pd.DataFrame, lead: str = "Cheapest to dearest") -> list[str]:
    """'Cheapest to dearest: a < b ≈ c', one line per comparable group, named when the run
    has more than one ('Cheapest to dearest, read scenario, 20 users, 2 nodes: ...')."""
    orders = [(name, order) for name, order in cost_orders(table) if order]
    if not orders:
        return []
    if len(orders) == 1:
        return [f"{lead}: {order_text(orders[0][1])}"]
    return [f"{lead}, {name}: {order_text(order)}" for name, order in orders]


def rps_text(row: pd.Series) -> str:
    """A cost_table row's closed-loop req/s, with its range; in brackets and named as not
    the target's capacity unless every repeat was target-bound."""
    text = interval(row, "rps").text(0)
    return text if row["is_target_bound"] else f"({text}: not the target's capacity)"


def limited_text(row: pd.Series) -> str:
    """What limited a cost_table row's windows, with its share when repeats differed."""
    label = str(row["bottleneck"])
    if row["bottleneck_share"] < 1:
        label += f" ({100 * row['bottleneck_share']:.0f} % of repeats)"
    return label


def disturbed(row: pd.Series) -> bool:
    """True when a configuration had windows the machine's other work disturbed."""
    return bool(row.get("disturbed_windows", 0))


def sanity_warnings(table: pd.DataFrame) -> list[str]:
    """A mode that costs less than no auth at all, beyond noise, makes the run unreliable;
    windows that other work on the machine disturbed are named."""
    warnings: list[str] = []
    if table.empty:
        return warnings
    if "disturbed_windows" in table and table["disturbed_windows"].sum():
        hit = table[table["disturbed_windows"] > 0]
        windows = int(hit["disturbed_windows"].sum())
        share = 100 * float(hit["foreign_cpu_share_max"].max())
        warnings.append(
            f"DISTURBED RUN: in {windows} of {int(table['repeats'].sum())} windows more than "
            f"{100 * DISTURBED:.0f} % of the machine's CPU (up to {share:.0f} %) was busy with "
            "work none of the measured processes did: another program ran. Cost per request "
            "holds up under such noise; latency and req/s do not. Rerun on a quiet machine "
            "before trusting them")
    for _, group in table.groupby(["users", "nodes", "scenario"]):
        floor = group[group["mode"] == "none"]
        if floor.empty:
            continue
        floor_cost = interval(floor.iloc[0], "server_cpu_us")
        for _, row in group[group["mode"] != "none"].iterrows():
            cost = interval(row, "server_cpu_us")
            if cost.high < floor_cost.low:
                warnings.append(
                    f"UNRELIABLE RUN: {row['key']} cost {cost.text(1)} µs per request, less "
                    f"than no auth at all ({floor_cost.text(1)} µs) beyond the spread of the "
                    "repeats; an auth step cannot be cheaper than none, so something else "
                    "(another load on the machine, CPU frequency, a noisy neighbour) moved "
                    "the figures during this run")
    return warnings
