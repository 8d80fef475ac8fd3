"""Which mode, store and algorithm meet a latency and throughput target on a run's data.

Capacity is the measured req/s where the target was the bottleneck; elsewhere it is
estimated from CPU per request, since req/s then measured something else: 10^6 /
target µs per node, or 10^6 / store µs when the store (one Redis thread) would
run out first. Of the configurations that meet the target, the
cheapest per request (by its median) is recommended; every other one this run
cannot tell apart from it (overlapping ranges over repeats) is named beside it.
The floor (mode none) is no auth at all, so it is never recommended.

Where the run has a configuration's latency-throughput curve (open-model windows at
three rates or more, analysis.latency.curve), its capacity is the highest offered rate up to
which p99 stayed under the target and the achieved rate kept up: measured at the
target's own pace, not estimated. A run of curves alone (no closed-loop windows, so no
cost per request) ranks the configurations by that rate.

Costs rank only configurations that ran the same scenario, users and nodes
(analysis.cost.table.COMPARABLE): a run of several such groups gets a recommendation per group,
named, and ties are looked for within a group only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from analysis.cost.table import COMPARABLE, cost_table, group_name, interval
from analysis.data.endpoints import HOT_PATHS, ME
from analysis.latency.curve import MIN_RATES, Point, curve_points, generator_limits, max_rate_under

MAX_ERROR_RATE = 0.01


@dataclass(frozen=True)
class Candidate:
    """One configuration measured in the run, against the target."""

    key: str
    rps: float  # capacity: measured (target-bound) or estimated from CPU
    is_estimated: bool
    p99_ms: float
    error_rate: float
    cost_us: float
    cost_low: float
    cost_high: float
    headroom: float  # min(p99 target / p99, rps / rps target): > 1 meets with room to spare
    reasons: tuple[str, ...]  # why it misses (empty when it meets)
    is_from_curve: bool = False  # capacity: the curve's highest rate with p99 under target
    group: str = ""  # its comparable group (analysis.cost.table.group_name): costs rank within it

    @property
    def is_meeting(self) -> bool:
        return not self.reasons


def _error_rates(frame: pd.DataFrame) -> dict[str, float]:
    ok = frame[frame["status"] == "ok"]
    hot = ok[ok["endpoint"].isin(HOT_PATHS)]
    return {str(k): float(g["error_rate"].fillna(0).median()) for k, g in hot.groupby("key")}


def _curves(frame: pd.DataFrame) -> dict[str, list[Point]]:
    """Each configuration's (offered, p99, achieved) points, where it has a curve."""
    points = curve_points(frame, ME)
    if points.empty:
        return {}
    return {str(config): list(zip(g["rate_offered"], g["p99_ms"], g["rate_achieved"],
                                  strict=True))
            for (config, mode), g in points.groupby(["config", "mode"])
            if len(g) >= MIN_RATES and mode != "none"}  # the floor is no auth at all


def _from_curve(key: str, curve: list[Point], p99_ms: float, rps: float, error: float,
                cost: tuple[float, float, float], limit: float | None = None) -> Candidate:
    """A candidate judged on its curve: the highest rate that kept p99 under the target.
    limit: the rate from which the generator fell short (the curve could go no further)."""
    sustained = max_rate_under(curve, p99_ms) or 0.0
    # p99 at the highest measured rate not above the target rate (the lowest if all are)
    got_p99 = max((p for p in curve if p[0] <= rps), default=min(curve))[1]
    reasons = []
    if sustained < rps and limit is not None and sustained == max(p[0] for p in curve):
        reasons.append(f"unknown: its curve kept p99 under {p99_ms:g} ms up to "
                       f"{sustained:,.0f} req/s, the last rate the load generator delivered "
                       f"(it fell short from {limit:,.0f}), so this run cannot say whether it "
                       f"reaches {rps:,.0f}")
    elif sustained < rps:
        reasons.append(f"its curve keeps p99 under {p99_ms:g} ms up to {sustained:,.0f} "
                       f"req/s, under {rps:,.0f}")
    if error > MAX_ERROR_RATE:
        reasons.append(f"{100 * error:.1f}% of requests failed")
    headroom = sustained / rps if rps else math.inf
    return Candidate(key, sustained, False, got_p99, error, *cost, headroom, tuple(reasons),
                     is_from_curve=True)


def recommend(frame: pd.DataFrame, p99_ms: float, rps: float) -> list[Candidate]:
    """Every auth configuration: meeting ones first, cheapest first, then the rest."""
    table = cost_table(frame)
    curves = _curves(frame)
    limits = generator_limits(frame, ME)
    errors = _error_rates(frame)
    if table.empty:  # curves alone: no cost per request, ranked by the rate they sustain
        candidates = [_from_curve(key, curve, p99_ms, rps, errors.get(key, 0.0),
                                  (math.nan, math.nan, math.nan), limits.get(key))
                      for key, curve in curves.items()]
        return sorted(candidates, key=lambda c: (not c.is_meeting, -c.rps, c.key))
    candidates = []
    for _, row in table[table["mode"] != "none"].iterrows():
        error = errors.get(str(row["key"]), 0.0)
        cost = interval(row, "server_cpu_us")
        group = group_name({c: row[c] for c in COMPARABLE if c in row})
        if str(row["key"]) in curves:
            candidates.append(replace(
                _from_curve(str(row["key"]), curves[str(row["key"])], p99_ms, rps, error,
                            (cost.median, cost.low, cost.high), limits.get(str(row["key"]))),
                group=group))
            continue
        estimated = not row["is_target_bound"]
        capacity = float(row["rps"])
        if estimated:  # what the target could serve, unless its store serves less
            capacity = 1e6 / row["target_cpu_us"] * int(row["nodes"])
            store_us = float(row["store_cpu_us"])
            if not math.isnan(store_us) and store_us > 0:
                capacity = min(capacity, 1e6 / store_us)
        got_p99 = float(row["p99_ms"])
        reasons = []
        if got_p99 > p99_ms:
            reasons.append(f"p99 {got_p99:.2f} ms is over {p99_ms:g} ms")
        if capacity < rps:
            reasons.append(f"{capacity:,.0f} req/s{' (estimated)' if estimated else ''} "
                           f"is under {rps:,.0f}")
        if error > MAX_ERROR_RATE:
            reasons.append(f"{100 * error:.1f}% of requests failed")
        headroom = min(p99_ms / got_p99 if got_p99 else math.inf,
                       capacity / rps if rps else math.inf)
        candidates.append(Candidate(str(row["key"]), capacity, estimated, got_p99, error,
                                    cost.median, cost.low, cost.high, headroom,
                                    tuple(reasons), group=group))
    return sorted(candidates, key=lambda c: (not c.is_meeting, c.cost_us, c.key))


def _ties(best: Candidate, meeting: list[Candidate]) -> list[Candidate]:
    """The meeting candidates whose cost range overlaps the cheapest one's."""
    return [c for c in meeting[1:] if c.cost_low <= best.cost_high and best.cost_low <= c.cost_high]


def _by_group(meeting: list[Candidate]) -> dict[str, list[Candidate]]:
    """Meeting candidates per comparable group, the group of the cheapest first."""
    groups: dict[str, list[Candidate]] = {}
    for c in meeting:
        groups.setdefault(c.group, []).append(c)
    return groups


def _recommended(meeting: list[Candidate], group: str) -> list[str]:
    """The best of one group's meeting candidates, its ties, and the rest that meet."""
    best = meeting[0]
    ties = _ties(best, meeting)
    chosen = [best, *sorted(ties, key=lambda c: c.key)]
    why = "the highest rate under the target of those that meet it" \
        if math.isnan(best.cost_us) else "the cheapest per request that meets it"
    lines = [f"recommended{f', {group}' if group else ''}: {best.key} — {why}"]
    if ties:
        lines.append("  this run cannot tell it apart in cost from: "
                     + ", ".join(c.key for c in chosen[1:]))
    for c in chosen:
        cost = "cost not measured (no closed-loop windows)" if math.isnan(c.cost_us) \
            else f"{c.cost_us:.1f} µs/request ({c.cost_low:.1f} to {c.cost_high:.1f})"
        lines.append(f"  {c.key}: {cost}, p99 {c.p99_ms:.2f} ms, {c.rps:,.0f} req/s"
                     f"{' (estimated)' if c.is_estimated else ''}"
                     f"{' (from its curve)' if c.is_from_curve else ''}, headroom "
                     f"x{c.headroom:.2f}")
    return lines + [f"  also meets: {c.key} ("
                    + (f"{c.rps:,.0f} req/s" if math.isnan(c.cost_us)
                       else f"{c.cost_us:.1f} µs/request")
                    + f", headroom x{c.headroom:.2f})" for c in meeting[1:] if c not in ties]


def format_recommendation(candidates: list[Candidate], p99_ms: float, rps: float) -> list[str]:
    """The answer as lines: the best choice and why (one per comparable group when the run
    has several), then what does not meet and why."""
    meeting = [c for c in candidates if c.is_meeting]
    lines = [f"target: p99 <= {p99_ms:g} ms and >= {rps:,.0f} req/s on one target node per "
             "configuration (p99: median over repeats at this run's closed-loop load; "
             "capacity: measured where the target was the bottleneck, else 10^6 / CPU µs per "
             "request over the closed-loop windows)"]
    if any(c.is_from_curve for c in candidates):
        lines.append("  where the run has a configuration's latency-throughput curve: its "
                     "capacity is the highest offered rate that kept p99 under the target "
                     "(open model), and p99 the curve's at the target rate")
    groups = _by_group(meeting)
    for group, members in groups.items():
        lines += _recommended(members, group if len(groups) > 1 else "")
    if not meeting:
        lines.append("nothing measured in this run meets the target")
    for c in candidates:
        if not c.is_meeting:
            lines.append(f"  does not meet: {c.key} — {'; '.join(c.reasons)}")
    return lines
