"""Open-model cells (a `rate`): offered against achieved, the schedule's lag, and whether
the generator delivered the load at all.

A cell's percentiles say something about the target only when the generator sent what
was offered, on time. It did not when its own CPU ran out, when requests left late
although requests in flight were below their bound (the generator could not keep its
schedule), or when the bound on requests in flight was reached while the target was
mostly idle (too few users for the rate: the queue was in the generator). Such cells
get `is_generator_short` and a `generator_note`, and verdicts and curves leave them out,
as are windows whose requests left late while another program took the CPU.
Equal-load latency also leaves out a window whose requests left over STALL_FACTOR times
later than in its configuration's median window (the generator stalled: in a measured
pair of quick runs, one window of 24 whose requests left 9.9 ms late at p99 against
1.8-2.7 ms in the others had a p90 of 5.9 ms against 2.7-3.6 ms, and it moved its
configuration's merged p90 by a third).
Every rule but the first needs requests to have left late (schedule lag p99 over
LATE_MS): a moment with every user busy that the schedule absorbed is no shortfall.
A target that cannot keep up (achieved below offered while it is busy) is the knee, not
a short generator.

Latency at equal offered load (equal_load_table) is read off the histograms of a
configuration's windows merged, never a median of per-window percentiles, with a
bootstrap interval over the windows: windows drawn with replacement, merged, the
percentile read, BOOTSTRAP_DRAWS times from a fixed seed, so a report rebuilt from the
same files gives the same interval. It leaves out, beside the windows whose generator
fell short, those in which another program took more than DISTURBED of the machine's
CPU, requests on time or not: that program's work is in their latency (in a measured
run, p99 2.5-6 ms in the quiet windows, 9-18 ms in those where others took 30-40 %; one
such window of four doubled the merged p99).

p90 is the figure two runs agree on. In two undisturbed pairs of back-to-back quick runs
on a 2-core machine at 40 % of the dearest's capacity, each configuration's merged p90
moved at most 16 % and 29 % between the runs, its p99 at most 38 % and 47 % (a p99 of
four 1.5 s windows is the slowest few dozen requests: one pause or two).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.cost.table import DISTURBED, Interval, hot_rows, median_of
from analysis.data.hdr import LAG, load_cell_histograms, percentiles

GENERATOR_BUSY = 0.90  # share of its CPU above which the generator is the bottleneck
LATE_MS = 10.0  # schedule lag p99 that counts as "could not keep its schedule"
TARGET_IDLE = 0.50  # target CPU share below which a full in-flight bound is the generator's
OPEN_COUNTS = ("scheduled", "sent", "in_flight_limit", "in_flight_max")
BOOTSTRAP_DRAWS = 1000
BOOTSTRAP_SEED = 20261207
INTERVAL_LEVEL = 0.95  # the bootstrap interval's coverage
# The numeric columns open_columns adds (NaN for a closed loop).
OPEN_COLUMNS = ("rate_offered", "rate_achieved", "rate_floor_capacity", "schedule_lag_p50_ms",
                "schedule_lag_p99_ms", "schedule_lag_max_ms", "arrivals_scheduled",
                "arrivals_sent", "in_flight_limit", "in_flight_max")


def sum_open_counts(blocks: list[dict[str, Any]]) -> dict[str, float] | None:
    """The "open" blocks of a cell's histogram files, added over its processes."""
    if not blocks:
        return None
    summed: dict[str, float] = {key: float(sum(b.get(key, 0) for b in blocks))
                                for key in OPEN_COUNTS}
    summed["rate"] = float(sum(b.get("rate", 0.0) for b in blocks))
    return summed


def generator_note(counts: dict[str, float], lag_p99_ms: float,
                   usage: dict[str, float]) -> str:
    """Why the generator did not deliver the offered load ("" when it did). usage: the
    window's generator_util, target_util and foreign_cpu_share (NaN when unknown)."""
    nan = float("nan")
    generator = usage.get("generator_util", nan)
    target = usage.get("target_util", nan)
    foreign = usage.get("foreign_cpu_share", nan)
    if not math.isnan(generator) and generator >= GENERATOR_BUSY:
        return f"the load generator used {generator:.0%} of its CPU"
    if lag_p99_ms <= LATE_MS:
        return ""  # requests left on time: whatever the latency, it is the target's
    late = f"requests left up to {lag_p99_ms:,.0f} ms late (p99)"
    if not math.isnan(foreign) and foreign > DISTURBED:
        return f"{late} while another program took {foreign:.0%} of the machine's CPU"
    if counts["in_flight_max"] < counts["in_flight_limit"]:
        return f"{late} with free users: the generator could not keep its schedule"
    if not math.isnan(target) and target < TARGET_IDLE:
        return (f"{late}, all {counts['in_flight_limit']:.0f} users busy, while the target "
                f"used {target:.0%} of its CPU: too few users for this rate")
    return ""


def open_columns(record: dict[str, Any], counts: dict[str, float] | None,
                 histograms: dict[str, HdrHistogram], requests: int, seconds: float,
                 usage: dict[str, float]) -> dict[str, Any]:
    """The cell-level columns of an open-model cell (NaN and False for a closed loop)."""
    nan = float("nan")
    rate = record.get("rate") or {}
    if counts is None or not rate:
        return {**dict.fromkeys(OPEN_COLUMNS, nan), "is_generator_short": False,
                "generator_note": ""}
    lag = percentiles(histograms.get(LAG))
    note = generator_note(counts, lag["p99_ms"], usage)
    floor = rate.get("floor_capacity")
    return {
        "rate_offered": float(rate.get("offered", counts["rate"])),
        "rate_achieved": requests / seconds if seconds > 0 else nan,
        "rate_floor_capacity": nan if floor is None else float(floor),
        "schedule_lag_p50_ms": lag["p50_ms"],
        "schedule_lag_p99_ms": lag["p99_ms"],
        "schedule_lag_max_ms": lag["max_ms"],
        "arrivals_scheduled": counts["scheduled"],
        "arrivals_sent": counts["sent"],
        "in_flight_limit": counts["in_flight_limit"],
        "in_flight_max": counts["in_flight_max"],
        "is_generator_short": bool(note),
        "generator_note": note,
    }


@dataclass(frozen=True)
class Merged:
    """A percentile of windows merged, with its bootstrap interval over the windows."""

    value: float  # ms; NaN without a window
    low: float
    high: float
    windows: int
    requests: int


def _bucket_counts(histograms: Sequence[HdrHistogram]) -> tuple[np.ndarray, np.ndarray]:
    """Each window's counts in the buckets any of them used (windows x buckets), and those
    buckets' values in ms as HdrHistogram reports a percentile (its highest equivalent)."""
    counts = np.stack([np.ctypeslib.as_array(h.counts)[:h.counts_len].astype(np.float64)
                       for h in histograms])
    used = np.flatnonzero(counts.sum(axis=0))
    first = histograms[0]
    values = np.array([first.get_highest_equivalent_value(first.get_value_from_index(int(i)))
                       for i in used], dtype=np.float64) / 1000
    return counts[:, used], values


def _percentile_of(weights: np.ndarray, counts: np.ndarray, values: np.ndarray,
                   percentile: float) -> np.ndarray:
    """The percentile of each row of weights' windows merged (HdrHistogram's own rule)."""
    cumulative = (weights @ counts).cumsum(axis=1)
    target = np.maximum(1, np.floor(percentile * cumulative[:, -1] / 100 + 0.5))
    result: np.ndarray = values[(cumulative < target[:, None]).sum(axis=1)]
    return result


def merged_percentile(histograms: Sequence[HdrHistogram], percentile: float,
                      draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED) -> Merged:
    """percentile of the histograms merged, and the INTERVAL_LEVEL bootstrap interval of it
    over the windows (one window: no interval, low = high = value)."""
    kept = [h for h in histograms if h.get_total_count()]
    if not kept:
        return Merged(math.nan, math.nan, math.nan, 0, 0)
    counts, values = _bucket_counts(kept)
    value = float(_percentile_of(np.ones((1, len(kept))), counts, values, percentile)[0])
    requests = int(counts.sum())
    if len(kept) == 1:
        return Merged(value, value, value, 1, requests)
    weights = np.random.default_rng(seed).multinomial(len(kept), [1 / len(kept)] * len(kept),
                                                      size=draws)
    # Few windows give few distinct draws (4 windows: 35): merge each once.
    distinct, drawn_as = np.unique(weights, axis=0, return_inverse=True)
    drawn = _percentile_of(distinct.astype(np.float64), counts, values,
                           percentile)[drawn_as.reshape(-1)]
    low, high = np.quantile(drawn, [(1 - INTERVAL_LEVEL) / 2, (1 + INTERVAL_LEVEL) / 2])
    return Merged(value, float(low), float(high), len(kept), requests)


def window_histograms(run: Path, frame: pd.DataFrame) -> dict[str, HdrHistogram]:
    """Each open-model window's latency histogram (from the intended send) of its hot
    endpoint, by cell: what equal_load_table merges."""
    found: dict[str, HdrHistogram] = {}
    for _, row in hot_rows(frame, is_open=True).iterrows():
        own = row.get("api_endpoint")  # an API's own request name, as its files keep it
        name = own if isinstance(own, str) and own else str(row["endpoint"])
        histogram = load_cell_histograms(run / "cells" / str(row["cell"]))[0].get(name)
        if histogram is not None:
            found[str(row["cell"])] = histogram
    return found


def equal_load_of(run: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """equal_load_table from the run folder's histograms merged: the one equal-load table
    every report, summary and comparison of a run shows."""
    return equal_load_table(frame, window_histograms(run, frame))


EQUAL_LOAD_PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0))
MERGED_BASIS = ("of the {n} windows' histograms merged; in brackets a "
                f"{INTERVAL_LEVEL:.0%} bootstrap interval over the windows "
                f"({BOOTSTRAP_DRAWS:,} draws)")
MEDIAN_BASIS = "median over the {n} windows; in brackets their range"
STALL_FACTOR = 3.0  # schedule lag p99 over this many times the configuration's median window
STALL_MIN_MS = 5.0  # ... and over this many ms: the generator stalled in that window
STALL_MIN_WINDOWS = 3  # a median of fewer windows says nothing of what is typical
STALLED_NOTE = ("the load generator stalled: requests left {lag:,.1f} ms late (p99), over "
                f"{STALL_FACTOR:g} times the configuration's other windows")
DISTURBED_NOTE = (f"another program took more than {DISTURBED:.0%} of the machine's CPU "
                  "(its work is in the latency)")


def equal_load_table(frame: pd.DataFrame,
                     histograms: Mapping[str, HdrHistogram] | None = None) -> pd.DataFrame:
    """Per configuration and rate: latency at that offered load, over the repeats whose
    generator delivered it.

    Columns: config, mode, rate_spec, repeats (windows used), short (windows left out),
    disturbed (of those, left out for another program's CPU), notes (why they were left
    out), rate_offered, rate_achieved (medians), p50_ms, p90_ms and p99_ms with _low and
    _high, latency_basis (what they are), latency_requests (the requests they count),
    service_p99_ms, schedule_lag_p99_ms. With histograms (by cell: window_histograms),
    the percentiles of the windows merged and a bootstrap interval; without, the median
    of the windows' own percentiles and their range.
    """
    hot = hot_rows(frame, is_open=True)
    if hot.empty or "rate_offered" not in hot:
        return pd.DataFrame()
    rows = []
    for (config, spec), group in hot.groupby(["config", "rate_spec"], sort=False):
        is_short, is_disturbed, is_stalled = window_flags(group)
        kept = group[~is_short & ~is_disturbed & ~is_stalled]
        notes = set(group.loc[is_short, "generator_note"])
        if is_disturbed.any():
            notes.add(DISTURBED_NOTE)
        if is_stalled.any():
            notes |= {STALLED_NOTE.format(lag=lag) for lag in
                      group.loc[is_stalled, "schedule_lag_p99_ms"]}
        rows.append({
            "config": config, "mode": group["mode"].iloc[0], "rate_spec": spec,
            "repeats": len(kept), "short": int((is_short | is_disturbed | is_stalled).sum()),
            "disturbed": int(is_disturbed.sum()), "stalled": int(is_stalled.sum()),
            "notes": sorted(notes),
            "rate_offered": median_of(group, "rate_offered"),
            "rate_achieved": median_of(kept, "rate_achieved"),
            **_latency(kept, histograms),
            "service_p99_ms": median_of(kept, "service_p99_ms"),
            "schedule_lag_p99_ms": median_of(kept, "schedule_lag_p99_ms"),
        })
    return pd.DataFrame(rows)


def window_flags(group: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Which of one configuration's open-model windows at one rate equal load leaves out:
    (generator short, disturbed by another program, generator stalled). Stalled: its
    requests left more than STALL_FACTOR times later (schedule lag p99) than in the
    configuration's median window and over STALL_MIN_MS late, while the generator was not
    short; latency counts from the intended send, so the generator's own stall is in it."""
    is_short = group["is_generator_short"].astype(bool)
    foreign = group["foreign_cpu_share"].fillna(0) if "foreign_cpu_share" in group \
        else pd.Series(0.0, index=group.index)
    is_disturbed = ~is_short & (foreign > DISTURBED)
    lag = group["schedule_lag_p99_ms"] if "schedule_lag_p99_ms" in group \
        else pd.Series(math.nan, index=group.index)
    typical = lag[~is_short & ~is_disturbed].median()
    is_stalled = ~is_short & ~is_disturbed & (lag > STALL_MIN_MS) & \
        (lag > STALL_FACTOR * typical) if len(group) >= STALL_MIN_WINDOWS \
        else is_short & False
    return is_short, is_disturbed, is_stalled


def kept_windows(frame: pd.DataFrame) -> pd.DataFrame:
    """The open-model windows equal_load_table keeps (hot endpoint rows)."""
    hot = hot_rows(frame, is_open=True)
    if hot.empty or "rate_spec" not in hot:
        return hot
    keep = pd.Series(False, index=hot.index)
    for _, group in hot.groupby(["config", "rate_spec"], sort=False):
        is_short, is_disturbed, is_stalled = window_flags(group)
        keep[group.index] = ~is_short & ~is_disturbed & ~is_stalled
    return hot[keep]


def _latency(kept: pd.DataFrame, histograms: Mapping[str, HdrHistogram] | None
             ) -> dict[str, Any]:
    """p50, p90 and p99 of a configuration's kept windows, with interval and basis."""
    columns: dict[str, Any] = {}
    windows = [histograms[c] for c in kept["cell"] if c in histograms] \
        if histograms is not None else []
    if histograms is not None and len(windows) == len(kept):
        for name, percentile in EQUAL_LOAD_PERCENTILES:
            merged = merged_percentile(windows, percentile)
            columns.update({name: merged.value, f"{name}_low": merged.low,
                            f"{name}_high": merged.high})
        columns["latency_requests"] = merged.requests
        columns["latency_basis"] = MERGED_BASIS.format(n=len(windows))
        return columns
    for name, _ in EQUAL_LOAD_PERCENTILES:
        interval = Interval.of(kept.get(name, []))
        columns.update({name: interval.median, f"{name}_low": interval.low,
                        f"{name}_high": interval.high})
    requests = kept["requests"].sum() if "requests" in kept else math.nan
    columns["latency_requests"] = int(requests) if not math.isnan(requests) else math.nan
    columns["latency_basis"] = MEDIAN_BASIS.format(n=len(kept))
    return columns


def is_one_rate(equal_load: pd.DataFrame) -> bool:
    """True when every configuration was offered the same one rate (quick's fixed-rate
    pass): then latency at equal offered load leads the answer."""
    return not equal_load.empty and equal_load["rate_spec"].nunique() == 1


def generator_warnings(frame: pd.DataFrame) -> list[str]:
    """A line per open-model window whose generator did not deliver the offered load."""
    if "is_generator_short" not in frame:
        return []
    short = frame[frame["is_generator_short"].astype(bool)].drop_duplicates("cell")
    return [f"{row['cell']}: the load generator fell short of {row['rate_offered']:,.0f} "
            f"req/s ({row['generator_note']}); its percentiles are left out of the answer "
            "and the curves" for _, row in short.iterrows()]
