"""Compare two runs configuration by configuration, on what a run can stand behind.

Metrics: cost per request relative to the run's own floor (mode none; the machine's
speed drifts by 10-20 % between runs, the ratio far less), p99 latency, and req/s only
where both runs' windows were target-bound (elsewhere req/s measured the load
generator). Absolute cost and req/s follow the machine's speed as much as the code:
where both runs have a floor they are shown, not judged (capacity relative to the
floor is vs_floor). p99 has its own threshold, LATENCY_FAIL_OVER: between two runs of
the same code on the same machine, closed-loop p99 of short windows moved by up to
17.5 % (cost relative to the floor by up to 10.5 %), and dividing it by the floor's p99
only adds the floor's own noise. Latency and req/s are compared only between windows with
the same bottleneck and undisturbed by other work on the machine (closed-loop latency
follows whatever limited the window); cost holds up under both. A change is a
regression only when it is worse by more than its threshold, the two runs' intervals
(the range over repeats) do not overlap, and, where both runs have enough repeats, a
permutation test says it is unlikely to be noise. With one repeat in either run there
is no interval, and a change is reported but not called.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from analysis.costs import DISTURBED, Interval, hot_rows, with_floor_ratio

ALPHA = 0.05
LATENCY_FAIL_OVER = 0.30  # p99's threshold: beyond what A/A pairs of quick runs moved it
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
    """One configuration's change from run A to run B."""

    key: str
    metric: str  # "vs_floor", "cost_us", "rps" or "p99_ms"
    before: float
    after: float
    p_value: float
    is_testable: bool
    is_separated: bool = True  # the intervals over repeats do not overlap
    repeats: tuple[int, int] = (2, 2)
    not_comparable: str = ""  # why the two runs' figures cannot be compared ('' if they can)

    @property
    def relative(self) -> float:
        return (self.after - self.before) / self.before if self.before else math.nan

    @property
    def is_worse(self) -> bool:
        return self.relative < 0 if self.metric in HIGHER_IS_BETTER else self.relative > 0

    @property
    def has_intervals(self) -> bool:
        return min(self.repeats) >= 2

    def limit(self, threshold: float, latency_threshold: float = LATENCY_FAIL_OVER) -> float:
        """The threshold that applies to this metric (latency has its own)."""
        return latency_threshold if self.metric in LATENCY else threshold

    def is_regression(self, threshold: float,
                      latency_threshold: float = LATENCY_FAIL_OVER) -> bool:
        """Worse by more than its threshold (a fraction), beyond both runs' spread, and
        significant where testable."""
        if not self.is_worse or self.not_comparable or \
                abs(self.relative) < self.limit(threshold, latency_threshold):
            return False
        if not self.has_intervals or not self.is_separated:
            return False
        if not self.is_testable or math.isnan(self.p_value):
            return True  # separated ranges decide (said in the output)
        return self.p_value < ALPHA


# "vs_floor": the floor's cost over the configuration's, per repeat (higher is better):
# what the run's own floor says, whatever the machine's speed that hour. Absolute cost
# and req/s are judged only where a run has no floor.
METRICS = (("vs_floor", "floor_ratio"), ("cost_us", "server_cpu_us"), ("rps", "rps"),
           ("p99_ms", "p99_ms"))
HIGHER_IS_BETTER = ("rps", "vs_floor")
LATENCY = ("p99_ms",)
ABSOLUTE = ("cost_us", "rps")  # shown only where both runs have a floor


def _has_floor(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Both runs have a floor for these windows (floor_ratio is known throughout)."""
    return bool(left["floor_ratio"].notna().all() and right["floor_ratio"].notna().all())


def _not_comparable(left: pd.DataFrame, right: pd.DataFrame) -> str:
    """Why latency of these windows cannot be compared ('' when it can): other work on the
    machine, or a different bottleneck (latency under closed-loop load follows whatever
    limited the window)."""
    for name, rows in (("A", left), ("B", right)):
        share = rows.get("foreign_cpu_share", pd.Series(dtype=float))
        if (share > DISTURBED).any():
            return f"run {name} was disturbed by other work ({100 * share.max():.0f} % CPU)"
    limits_a, limits_b = set(left["bottleneck"]), set(right["bottleneck"])
    if limits_a == limits_b:
        return ""
    return (f"the bottleneck differed ({'/'.join(sorted(limits_a))} vs "
            f"{'/'.join(sorted(limits_b))})")


def compare_frames(before: pd.DataFrame, after: pd.DataFrame) -> list[Change]:
    """Changes of the median cost, req/s (target-bound only) and p99 per configuration."""
    a, b = with_floor_ratio(hot_rows(before)), with_floor_ratio(hot_rows(after))
    changes: list[Change] = []
    if a.empty or b.empty:
        return changes
    for key in sorted(set(a["key"]) & set(b["key"])):
        left, right = a[a["key"] == key], b[b["key"] == key]
        for metric, column in METRICS:
            if column not in left or column not in right:
                continue
            if metric == "rps" and not ((left["bottleneck"] == "target").all()
                                        and (right["bottleneck"] == "target").all()):
                continue  # req/s of a window the target did not limit is not its capacity
            if metric == "vs_floor" and left["mode"].iloc[0] == "none":
                continue  # the floor against itself: always 1
            # Cost holds up under other work and other bottlenecks; the rest does not.
            why_not = "" if metric in ("vs_floor", "cost_us") else _not_comparable(left, right)
            if metric in ABSOLUTE and not why_not and _has_floor(left, right):
                # Absolute figures follow the machine's speed that hour (the floor's too).
                why_not = "shown only: judged relative to the floor (vs_floor)"
            xs = left[column].dropna().tolist()
            ys = right[column].dropna().tolist()
            if not xs or not ys:
                continue
            testable = min_p_value(len(xs), len(ys)) < ALPHA
            changes.append(Change(
                key=key, metric=metric, before=statistics.median(xs), after=statistics.median(ys),
                p_value=permutation_p_value(xs, ys) if testable else math.nan,
                is_testable=testable,
                is_separated=not Interval.of(xs).overlaps(Interval.of(ys)),
                repeats=(len(xs), len(ys)),
                not_comparable=why_not,
            ))
    return changes


def format_changes(changes: list[Change], threshold: float,
                   latency_threshold: float = LATENCY_FAIL_OVER) -> list[str]:
    """The comparison as lines, regressions marked."""
    lines = [f"{'configuration':<44}{'metric':<10}{'before':>10}{'after':>10}{'change':>9}"
             f"{'p':>8}  verdict"]
    for c in changes:
        p_text = f"{c.p_value:.3f}" if c.is_testable else "-"
        if c.is_regression(threshold, latency_threshold):
            verdict = "REGRESSION" + ("" if c.is_testable else
                                      " (ranges over repeats do not overlap)")
        elif abs(c.relative) < c.limit(threshold, latency_threshold):
            verdict = "no change beyond the threshold"
        elif c.not_comparable.startswith("shown only"):
            verdict = c.not_comparable
        elif c.not_comparable:
            verdict = f"not comparable: {c.not_comparable}"
        elif not c.has_intervals:
            verdict = ("worse" if c.is_worse else "better") + \
                " (one repeat: no interval, not judged)"
        elif not c.is_separated:
            verdict = "within the spread of the repeats (indistinguishable)"
        elif c.is_testable and c.p_value >= ALPHA:
            verdict = "not significant"
        else:
            verdict = "worse" if c.is_worse else "better"
        lines.append(f"{c.key:<44}{c.metric:<10}{c.before:>10.2f}{c.after:>10.2f}"
                     f"{100 * c.relative:>+8.1f}%{p_text:>8}  {verdict}")
    return lines
