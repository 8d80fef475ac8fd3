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

Two more things decide what is judged. Where both runs have open-model windows of a
configuration at the same rate spec (the same offered load, or the same share of the
floor's capacity), its latency is judged there (metric p99_load: equal_load_table's p99
and interval over the windows whose generator delivered the load undisturbed: of their
histograms merged with a bootstrap interval, or their median and range), and its
closed-loop p99 is shown, not judged: closed-loop latency follows the load the loop
happened to offer.
And where both runs probed the machine's speed (analysis.cost.speed) and the speeds differ by
more than the probe's noise, absolute cost, req/s and latency are shown, not judged:
only what is relative to each run's own floor (vs_floor) is.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.cost.speed import SPEED_NOISE, is_different_speed, speed_ratio, summarize
from analysis.cost.table import DISTURBED, Interval, hot_rows, with_floor_ratio
from analysis.data.load import load_run
from analysis.latency.equal_load import equal_load_table, kept_windows, window_histograms

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
# At equal offered load (open-model windows): p90 is judged, the figure the answer ranks by
# and steadier between runs; p99, the slowest few dozen requests of a short run,
# is shown.
EQUAL_LOAD_METRICS = (("p90_load", "p90_ms"), ("p99_load", "p99_ms"))
LATENCY = ("p99_ms", "p90_load", "p99_load")
ABSOLUTE = ("cost_us", "rps")  # shown only where both runs have a floor
SHOWN_FLOOR = "shown only: judged relative to the floor (vs_floor)"
SHOWN_SPEED = "shown only: the machines ran at different speeds"
SHOWN_EQUAL_LOAD = "shown only: latency judged at equal offered load (p90_load)"
SHOWN_P99 = "shown only: judged by p90 at equal load (p90_load)"


def _has_floor(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Both runs have a floor for these windows (floor_ratio is known throughout)."""
    return bool(left["floor_ratio"].notna().all() and right["floor_ratio"].notna().all())


def _disturbed(left: pd.DataFrame, right: pd.DataFrame) -> str:
    """Which run other work on the machine disturbed ('' when neither)."""
    for name, rows in (("A", left), ("B", right)):
        share = rows.get("foreign_cpu_share", pd.Series(dtype=float))
        if (share > DISTURBED).any():
            return f"run {name} was disturbed by other work ({100 * share.max():.0f} % CPU)"
    return ""


def _not_comparable(left: pd.DataFrame, right: pd.DataFrame) -> str:
    """Why latency of these windows cannot be compared ('' when it can): other work on the
    machine, or a different bottleneck (latency under closed-loop load follows whatever
    limited the window)."""
    if why := _disturbed(left, right):
        return why
    limits_a, limits_b = set(left["bottleneck"]), set(right["bottleneck"])
    if limits_a == limits_b:
        return ""
    return (f"the bottleneck differed ({'/'.join(sorted(limits_a))} vs "
            f"{'/'.join(sorted(limits_b))})")


def _change(key: str, metric: str, xs: list[float], ys: list[float], why_not: str,
            intervals: tuple[Interval, Interval] | None = None) -> Change:
    """A change judged over the repeats xs (run A) and ys (run B)."""
    testable = min_p_value(len(xs), len(ys)) < ALPHA
    a, b = intervals or (Interval.of(xs), Interval.of(ys))
    return Change(key=key, metric=metric, before=a.median, after=b.median,
                  p_value=permutation_p_value(xs, ys) if testable else math.nan,
                  is_testable=testable, is_separated=not a.overlaps(b),
                  repeats=(len(xs), len(ys)), not_comparable=why_not)


Histograms = Mapping[str, HdrHistogram] | None  # openmodel.window_histograms, by cell


def _open_windows(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """The open-model windows equal_load_table keeps, by (config, rate_spec)."""
    kept = kept_windows(frame)
    if kept.empty:
        return {}
    return {(str(config), str(spec)): group
            for (config, spec), group in kept.groupby(["config", "rate_spec"])}


def _table_interval(row: dict[str, Any], column: str) -> Interval:
    """equal_load_table's percentile (column) for one configuration and rate with its
    interval: of the windows merged and a bootstrap interval, or their median and range."""
    value = float(row[column])
    return Interval(value, float(row.get(f"{column}_low", value)),
                    float(row.get(f"{column}_high", value)), int(row["repeats"]))


def equal_load_changes(before: pd.DataFrame, after: pd.DataFrame, speed: float | None = None,
                       histograms: tuple[Histograms, Histograms] = (None, None)
                       ) -> list[Change]:
    """p90 (judged) and p99 (shown) at equal offered load: per configuration and rate spec
    both runs offered, from equal_load_table (windows whose generator fell short or
    stalled, or that another program disturbed, left out). The permutation test runs over
    the kept windows' own percentiles."""
    tables = [equal_load_table(frame, windows)
              for frame, windows in zip((before, after), histograms, strict=True)]
    if any(table.empty for table in tables):
        return []
    rows_a, rows_b = ({(str(r["config"]), str(r["rate_spec"])): r
                       for r in table.to_dict("records") if r["repeats"]} for table in tables)
    windows_a, windows_b = _open_windows(before), _open_windows(after)
    changes = []
    for config, spec in sorted(set(rows_a) & set(rows_b) & set(windows_a) & set(windows_b)):
        left, right = windows_a[config, spec], windows_b[config, spec]
        for metric, column in EQUAL_LOAD_METRICS:
            if column not in left or column not in right or \
                    pd.isna(rows_a[config, spec].get(column)) or \
                    pd.isna(rows_b[config, spec].get(column)):
                continue
            why_not = SHOWN_SPEED if is_different_speed(speed) else \
                (SHOWN_P99 if metric == "p99_load" else "")
            changes.append(_change(f"{config} at {spec}", metric,
                                   left[column].dropna().tolist(),
                                   right[column].dropna().tolist(), why_not,
                                   (_table_interval(rows_a[config, spec], column),
                                    _table_interval(rows_b[config, spec], column))))
    return changes


def compare_frames(before: pd.DataFrame, after: pd.DataFrame, speed: float | None = None,
                   histograms: tuple[Histograms, Histograms] = (None, None)) -> list[Change]:
    """Changes of the median cost, req/s (target-bound only) and p99 per configuration,
    and of p99 at equal offered load. speed: B's machine speed over A's (speed_ratio),
    None when not measured; histograms: each run's open-model windows' (equal_load_table
    merges them), None for the median of the windows' own p99s."""
    a, b = with_floor_ratio(hot_rows(before)), with_floor_ratio(hot_rows(after))
    at_load = equal_load_changes(before, after, speed, histograms)
    judged_at_load = {c.key.rpartition(" at ")[0] for c in at_load}
    changes: list[Change] = []
    for key in sorted(set(a["key"]) & set(b["key"])) if not (a.empty or b.empty) else []:
        left, right = a[a["key"] == key], b[b["key"] == key]
        config = str(left["config"].iloc[0]) if "config" in left else key
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
                why_not = SHOWN_FLOOR  # the machine's speed that hour (the floor's too)
            if metric in (*ABSOLUTE, *LATENCY) and not why_not and is_different_speed(speed):
                why_not = SHOWN_SPEED
            if metric in LATENCY and not why_not and config in judged_at_load:
                why_not = SHOWN_EQUAL_LOAD
            xs = left[column].dropna().tolist()
            ys = right[column].dropna().tolist()
            if xs and ys:
                changes.append(_change(key, metric, xs, ys, why_not))
    return changes + at_load


def speed_note(run_a: Path | str, run_b: Path | str) -> tuple[float | None, list[str]]:
    """B's speed over A's (None unless both runs probed it) and what compare says of it."""
    ratio = speed_ratio(run_a, run_b)
    if ratio is not None and is_different_speed(ratio):
        return ratio, [f"the machines ran at different speeds: B ran {ratio:.2f}x as fast as A "
                       "(speed probe); absolute cost, req/s and latency are shown, not judged"]
    if ratio is not None:
        return ratio, [f"machine speed: B ran {ratio:.2f}x as fast as A (speed probe), within "
                       f"the probe's noise ({100 * SPEED_NOISE:.0f} %)"]
    measured = [name for name, run in (("A", run_a), ("B", run_b)) if summarize(run)]
    if measured:
        return None, [f"machine speed: probed in run {measured[0]} only; not compared"]
    return None, []


def run_compare(run_a: Path | str, run_b: Path | str, threshold: float,
                latency_threshold: float = LATENCY_FAIL_OVER) -> tuple[list[str], int]:
    """`authbench compare` on two run folders: its lines and exit code (1 on a called
    regression, 2 when no configuration was measured in both, 0 otherwise)."""
    speed, notes = speed_note(run_a, run_b)
    before, after = load_run(run_a), load_run(run_b)
    changes = compare_frames(before, after, speed, (window_histograms(Path(run_a), before),
                                                    window_histograms(Path(run_b), after)))
    if not changes:
        return [*notes, "no configuration was measured in both runs"], 2
    regressed = any(c.is_regression(threshold, latency_threshold) for c in changes)
    return [*notes, *format_changes(changes, threshold, latency_threshold)], int(regressed)


def format_changes(changes: list[Change], threshold: float,
                   latency_threshold: float = LATENCY_FAIL_OVER) -> list[str]:
    """The comparison as lines, regressions marked."""
    width = max(44, *(len(c.key) + 2 for c in changes)) if changes else 44
    lines = [f"{'configuration':<{width}}{'metric':<10}{'before':>10}{'after':>10}"
             f"{'change':>9}{'p':>8}  verdict"]
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
        lines.append(f"{c.key:<{width}}{c.metric:<10}{c.before:>10.2f}{c.after:>10.2f}"
                     f"{100 * c.relative:>+8.1f}%{p_text:>8}  {verdict}")
    return lines
