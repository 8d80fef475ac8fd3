"""Compare two runs cell by cell: throughput and tail latency, with a test over repeats.

A change counts as a regression when it is larger than the minimum effect size and,
where both runs have enough repeats, an exact permutation test says it is unlikely
to be noise. With too few repeats the effect alone decides, and the output says so.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

HOT = "GET /api/me"
ALPHA = 0.05
MAX_PERMUTATIONS = 200_000


def _is_extreme(left: Sequence[float], right: Sequence[float], observed: float) -> bool:
    # Relative tolerance: req/s in the thousands carry rounding error far above 1e-12.
    return abs(statistics.fmean(left) - statistics.fmean(right)) >= observed * (1 - 1e-9)


def permutation_p_value(a: Sequence[float], b: Sequence[float], seed: int = 0) -> float:
    """Two-sided permutation test on the difference of means.

    Exact (every split) for small samples; above MAX_PERMUTATIONS splits, a Monte
    Carlo test of 20,000 random splits with p = (k + 1) / (N + 1).
    """
    pooled = [*a, *b]
    n, total = len(a), len(a) + len(b)
    if n == 0 or n == total:
        return math.nan
    observed = abs(statistics.fmean(a) - statistics.fmean(b))
    if math.comb(total, n) <= MAX_PERMUTATIONS:
        extreme = count = 0
        for chosen in itertools.combinations(range(total), n):
            picked = set(chosen)
            left = [pooled[i] for i in chosen]
            right = [pooled[i] for i in range(total) if i not in picked]
            extreme += _is_extreme(left, right, observed)
            count += 1
        return extreme / count
    shuffler = random.Random(seed)
    draws = 20_000
    extreme = 0
    for _ in range(draws):
        shuffled = pooled[:]
        shuffler.shuffle(shuffled)
        extreme += _is_extreme(shuffled[:n], shuffled[n:], observed)
    return (extreme + 1) / (draws + 1)


def min_p_value(n_a: int, n_b: int) -> float:
    """The smallest p the permutation test can give with these sample sizes.

    With equal sizes, swapping the two groups gives a second split as extreme.
    """
    if not n_a or not n_b:
        return math.nan
    return (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a)


@dataclass(frozen=True)
class Change:
    """One cell's change from run A to run B."""

    key: str
    metric: str  # "rps" or "p99_ms"
    before: float
    after: float
    p_value: float
    is_testable: bool

    @property
    def relative(self) -> float:
        return (self.after - self.before) / self.before if self.before else math.nan

    @property
    def is_worse(self) -> bool:
        return self.relative < 0 if self.metric == "rps" else self.relative > 0

    def is_regression(self, threshold: float) -> bool:
        """Worse by more than threshold (a fraction), and significant where testable."""
        if not self.is_worse or abs(self.relative) < threshold:
            return False
        if not self.is_testable or math.isnan(self.p_value):
            return True  # the effect size alone decides (said in the output)
        return self.p_value < ALPHA


def compare_frames(before: pd.DataFrame, after: pd.DataFrame) -> list[Change]:
    """Changes of median req/s and p99 for every configuration both runs measured."""
    def hot(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["status"] == "ok") & (frame["endpoint"] == HOT)]

    a, b = hot(before), hot(after)
    changes = []
    for key in sorted(set(a["key"]) & set(b["key"])):
        for metric in ("rps", "p99_ms"):
            xs = a.loc[a["key"] == key, metric].dropna().tolist()
            ys = b.loc[b["key"] == key, metric].dropna().tolist()
            if not xs or not ys:
                continue
            testable = min_p_value(len(xs), len(ys)) < ALPHA
            changes.append(Change(
                key=key, metric=metric, before=statistics.median(xs), after=statistics.median(ys),
                p_value=permutation_p_value(xs, ys) if testable else math.nan,
                is_testable=testable,
            ))
    return changes


def format_changes(changes: list[Change], threshold: float) -> list[str]:
    """The comparison as lines, regressions marked."""
    lines = [f"{'configuration':<44}{'metric':<8}{'before':>10}{'after':>10}{'change':>9}"
             f"{'p':>8}  verdict"]
    for c in changes:
        if not c.is_testable:
            p_text, note = "-", " (too few repeats to test: effect size only)"
        else:
            p_text, note = f"{c.p_value:.3f}", ""
        if c.is_regression(threshold):
            verdict = "REGRESSION" + note
        elif abs(c.relative) < threshold:
            verdict = "no change beyond the threshold"
        elif c.is_testable and c.p_value >= ALPHA:
            verdict = "not significant"
        else:
            verdict = ("worse" if c.is_worse else "better") + note
        lines.append(f"{c.key:<44}{c.metric:<8}{c.before:>10.2f}{c.after:>10.2f}"
                     f"{100 * c.relative:>+8.1f}%{p_text:>8}  {verdict}")
    return lines
