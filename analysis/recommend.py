"""Which mode, store and algorithm meet a latency and throughput target on a run's data."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

HOT = "GET /api/me"
MAX_ERROR_RATE = 0.01


@dataclass(frozen=True)
class Candidate:
    """One configuration measured in the run, against the target."""

    key: str
    rps: float
    p99_ms: float
    error_rate: float
    headroom: float  # min(p99 target / p99, rps / rps target): > 1 meets with room to spare
    reasons: tuple[str, ...]  # why it misses (empty when it meets)

    @property
    def is_meeting(self) -> bool:
        return not self.reasons


def recommend(frame: pd.DataFrame, p99_ms: float, rps: float) -> list[Candidate]:
    """Every configuration, meeting ones first by headroom, then the rest."""
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == HOT)]
    candidates = []
    for key, group in hot.groupby("key"):
        got_rps = float(group["rps"].median())
        got_p99 = float(group["p99_ms"].median())
        errors = float(group["error_rate"].fillna(0).median())
        reasons = []
        if got_p99 > p99_ms:
            reasons.append(f"p99 {got_p99:.2f} ms is over {p99_ms:g} ms")
        if got_rps < rps:
            reasons.append(f"{got_rps:,.0f} req/s is under {rps:,.0f}")
        if errors > MAX_ERROR_RATE:
            reasons.append(f"{100 * errors:.1f}% of requests failed")
        headroom = min(p99_ms / got_p99 if got_p99 else float("inf"),
                       got_rps / rps if rps else float("inf"))
        candidates.append(Candidate(str(key), got_rps, got_p99, errors, headroom,
                                    tuple(reasons)))
    return sorted(candidates, key=lambda c: (not c.is_meeting, -c.headroom))


def format_recommendation(candidates: list[Candidate], p99_ms: float, rps: float) -> list[str]:
    """The answer as lines: the best choice and why, then what does not meet and why."""
    meeting = [c for c in candidates if c.is_meeting]
    lines = [f"target: p99 <= {p99_ms:g} ms and >= {rps:,.0f} req/s on GET /api/me "
             "(medians over repeats, this run's machine and load)"]
    if meeting:
        best = meeting[0]
        lines.append(f"recommended: {best.key} — p99 {best.p99_ms:.2f} ms, {best.rps:,.0f} req/s, "
                     f"headroom x{best.headroom:.2f} on the tighter of the two")
        lines += [f"  also meets: {c.key} (headroom x{c.headroom:.2f})" for c in meeting[1:]]
    else:
        lines.append("nothing measured in this run meets the target")
    for c in candidates:
        if not c.is_meeting:
            lines.append(f"  does not meet: {c.key} — {'; '.join(c.reasons)}")
    return lines
