"""HDR histograms from a cell's hdr-*.json files: merged exactly, never averaged.

The writer (loadtests/hdr.py) chooses the histograms' parameters and records them in
every file (`lowest`, `highest`, `significant_figures`); this reader builds each
histogram from what its file says, so the parameters have one home.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from analysis.data.formats import HDR, load_json

MISMATCH = ("{where}: histograms with other parameters ({found} against {wanted}) cannot be "
            "added exactly")
# Server-Timing metrics recorded beside each endpoint as "<metric> METHOD name".
# Open-model load adds "service <endpoint>" (time from the actual send, where the
# endpoint's own histogram counts from the intended send) and "schedule-lag".
TIMING_METRICS = ("auth", "auth-cpu", "store", "service")
LAG = "schedule-lag"
# Column suffix -> percentile: p50_ms, p90_ms, p99_ms, p99_9_ms (or _us).
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
UNITS = {"ms": 1000, "us": 1}  # histograms hold microseconds

Parameters = tuple[int, int, int]  # lowest, highest, significant figures


def timing(metric: str, endpoint: str) -> str:
    """The name of endpoint's histogram of one Server-Timing metric (TIMING_METRICS)."""
    return f"{metric} {endpoint}"


def is_timing(name: str) -> bool:
    """True for a Server-Timing (or open-model) histogram, False for an endpoint's latency."""
    return name == LAG or name.startswith(tuple(timing(metric, "") for metric in TIMING_METRICS))


CellFiles = list[tuple[Path, dict[str, Any]]]  # (path, parsed body) of each hdr-*.json


def cell_files(folder: Path) -> CellFiles:
    """Each hdr-*.json of a cell folder, read once and refused when its format is not one
    of HDR's; the readers below take it, so a loader reading several need not reread."""
    return [(path, load_json(path, HDR)) for path in sorted(folder.glob("hdr-*.json"))]


def _given(folder: Path, files: CellFiles | None) -> CellFiles:
    return cell_files(folder) if files is None else files


def _parameters(histogram: HdrHistogram) -> Parameters:
    return (histogram.lowest_trackable_value, histogram.highest_trackable_value,
            histogram.significant_figures)


def merge(histograms: Iterable[HdrHistogram]) -> HdrHistogram | None:
    """One histogram holding every recorded value of the given ones; None for none.

    They must share their parameters (one writer recorded them), so adding is exact.
    """
    merged: HdrHistogram | None = None
    for histogram in histograms:
        if merged is None:
            merged = HdrHistogram(*_parameters(histogram))
        elif _parameters(histogram) != _parameters(merged):
            raise ValueError(MISMATCH.format(where="merge", found=_parameters(histogram),
                                             wanted=_parameters(merged)))
        merged.add(histogram)
    return merged


def load_cell_histograms(folder: Path, files: CellFiles | None = None
                         ) -> tuple[dict[str, HdrHistogram], dict[str, int]]:
    """Every request name's merged histogram, and failure counts, over a cell's processes."""
    decoded: dict[str, list[HdrHistogram]] = {}
    failures: dict[str, int] = {}
    for path, data in _given(folder, files):
        wanted = (data["lowest"], data["highest"], data["significant_figures"])
        for name, text in data["histograms"].items():
            histogram = HdrHistogram.decode(text)
            if _parameters(histogram) != wanted:
                raise ValueError(MISMATCH.format(where=f"{path} {name!r}",
                                                 found=_parameters(histogram), wanted=wanted))
            decoded.setdefault(name, []).append(histogram)
        for name, count in data.get("failures", {}).items():
            failures[name] = failures.get(name, 0) + count
    merged = {name: merge(histograms) for name, histograms in decoded.items()}
    return {name: h for name, h in merged.items() if h is not None}, failures


def load_open_blocks(folder: Path, files: CellFiles | None = None) -> list[dict[str, Any]]:
    """The "open" block of each process's file (open-model load; none for a closed loop)."""
    return [data["open"] for _, data in _given(folder, files) if data.get("open")]


def measured_bounds(folder: Path, files: CellFiles | None = None
                    ) -> tuple[float, float] | None:
    """Unix times of the first and the last measured request over a cell's processes."""
    starts, ends = [], []
    for _, data in _given(folder, files):
        if data.get("measured_from") is not None and data.get("measured_until") is not None:
            starts.append(data["measured_from"])
            ends.append(data["measured_until"])
    return (min(starts), max(ends)) if starts else None


def mean_value(histogram: HdrHistogram) -> float:
    """HdrHistogram's get_mean_value (each bucket's count at its median equivalent value),
    over the used buckets only: the library walks every bucket in Python, which took 55 s
    of a 65 s report of an 80-cell run."""
    if not histogram.get_total_count():
        return 0.0
    counts = np.ctypeslib.as_array(histogram.counts)[:histogram.counts_len]
    used = np.flatnonzero(counts)
    middles = np.array([histogram._hdr_median_equiv_value(histogram.get_value_from_index(int(i)))
                        for i in used], dtype=np.float64)
    return float(np.dot(counts[used].astype(np.float64), middles) / histogram.get_total_count())


def percentiles(histogram: HdrHistogram | None, unit: str = "ms") -> dict[str, float]:
    """p50, p90, p99, p99.9, max and mean in ms (or "us"), named as the loader's columns
    (p50_ms, p90_ms, p99_ms, p99_9_ms, max_ms, mean_ms); NaN for no histogram."""
    names = [*(f"{name}_{unit}" for name in PERCENTILES), f"max_{unit}", f"mean_{unit}"]
    if histogram is None:
        return dict.fromkeys(names, math.nan)
    divisor = UNITS[unit]
    values = [*(histogram.get_value_at_percentile(p) for p in PERCENTILES.values()),
              histogram.get_max_value(), mean_value(histogram)]
    return {name: value / divisor for name, value in zip(names, values, strict=True)}
