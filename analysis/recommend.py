"""Which mode, store and algorithm meet a latency and throughput target on a run's data.

Capacity is the measured req/s where the target was the bottleneck; elsewhere it is
estimated from CPU per request, since req/s then measured something else: 10^6 /
target µs per node, or 10^6 / store µs when the store (one Redis thread) would
run out first. Of the configurations that meet the target, the
cheapest per request (by its median) is recommended; every other one this run
cannot tell apart from it (overlapping ranges over repeats) is named beside it.
The floor (mode none) is no auth at all, so it is never recommended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from analysis.costs import cost_table, interval
from analysis.endpoints import HOT_PATHS

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

    @property
    def is_meeting(self) -> bool:
        return not self.reasons


def _error_rates(frame: pd.DataFrame) -> dict[str, float]:
    ok = frame[frame["status"] == "ok"]
    hot = ok[ok["endpoint"].isin(HOT_PATHS)]
    return {str(k): float(g["error_rate"].fillna(0).median()) for k, g in hot.groupby("key")}


def recommend(frame: pd.DataFrame, p99_ms: float, rps: float) -> list[Candidate]:
    """Every auth configuration: meeting ones first, cheapest first, then the rest."""
    table = cost_table(frame)
    if table.empty:
        return []
    errors = _error_rates(frame)
    candidates = []
    for _, row in table[table["mode"] != "none"].iterrows():
        estimated = not row["is_target_bound"]
        capacity = float(row["rps"])
        if estimated:  # what the target could serve, unless its store serves less
            capacity = 1e6 / row["target_cpu_us"] * int(row["nodes"])
            store_us = float(row["store_cpu_us"])
            if not math.isnan(store_us) and store_us > 0:
                capacity = min(capacity, 1e6 / store_us)
        got_p99 = float(row["p99_ms"])
        error = errors.get(str(row["key"]), 0.0)
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
        cost = interval(row, "server_cpu_us")
        candidates.append(Candidate(str(row["key"]), capacity, estimated, got_p99, error,
                                    cost.median, cost.low, cost.high, headroom,
                                    tuple(reasons)))
    return sorted(candidates, key=lambda c: (not c.is_meeting, c.cost_us, c.key))


def _ties(best: Candidate, meeting: list[Candidate]) -> list[Candidate]:
    """The meeting candidates whose cost range overlaps the cheapest one's."""
    return [c for c in meeting[1:] if c.cost_low <= best.cost_high and best.cost_low <= c.cost_high]


def format_recommendation(candidates: list[Candidate], p99_ms: float, rps: float) -> list[str]:
    """The answer as lines: the best choice and why, then what does not meet and why."""
    meeting = [c for c in candidates if c.is_meeting]
    lines = [f"target: p99 <= {p99_ms:g} ms and >= {rps:,.0f} req/s on one target node per "
             "configuration (p99: median over repeats at this run's load; capacity: measured "
             "where the target was the bottleneck, else 10^6 / CPU µs per request)"]
    if meeting:
        best = meeting[0]
        ties = _ties(best, meeting)
        chosen = [best, *sorted(ties, key=lambda c: c.key)]
        lines.append(f"recommended: {best.key} — the cheapest per request that meets it")
        if ties:
            lines.append("  this run cannot tell it apart in cost from: "
                         + ", ".join(c.key for c in chosen[1:]))
        for c in chosen:
            lines.append(f"  {c.key}: {c.cost_us:.1f} µs/request ({c.cost_low:.1f} to "
                         f"{c.cost_high:.1f}), p99 {c.p99_ms:.2f} ms, {c.rps:,.0f} req/s"
                         f"{' (estimated)' if c.is_estimated else ''}, headroom "
                         f"x{c.headroom:.2f}")
        lines += [f"  also meets: {c.key} ({c.cost_us:.1f} µs/request, headroom "
                  f"x{c.headroom:.2f})" for c in meeting[1:] if c not in ties]
    else:
        lines.append("nothing measured in this run meets the target")
    for c in candidates:
        if not c.is_meeting:
            lines.append(f"  does not meet: {c.key} — {'; '.join(c.reasons)}")
    return lines
