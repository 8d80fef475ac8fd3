"""HDR histograms from a cell's hdr-*.json files: merged exactly, never averaged."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES = 1, 60_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# Server-Timing metrics recorded beside each endpoint as "<metric> METHOD name".
TIMING_PREFIXES = ("auth ", "auth-cpu ", "store ")


def is_timing(name: str) -> bool:
    """True for a Server-Timing histogram, False for an endpoint's latency."""
    return name.startswith(TIMING_PREFIXES)


def merge_encoded(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding every recorded value of the encoded ones."""
    merged = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    for text in encoded:
        merged.add(HdrHistogram.decode(text))
    return merged


def load_cell_histograms(folder: Path) -> tuple[dict[str, HdrHistogram], dict[str, int]]:
    """Every request name's merged histogram, and failure counts, over a cell's processes."""
    encoded: dict[str, list[str]] = {}
    failures: dict[str, int] = {}
    for path in sorted(folder.glob("hdr-*.json")):
        data = json.loads(path.read_text())
        for name, text in data["histograms"].items():
            encoded.setdefault(name, []).append(text)
        for name, count in data.get("failures", {}).items():
            failures[name] = failures.get(name, 0) + count
    return {name: merge_encoded(texts) for name, texts in encoded.items()}, failures


def measured_bounds(folder: Path) -> tuple[float, float] | None:
    """Unix times of the first and the last measured request over a cell's processes."""
    starts, ends = [], []
    for path in folder.glob("hdr-*.json"):
        data = json.loads(path.read_text())
        if data.get("measured_from") is not None and data.get("measured_until") is not None:
            starts.append(data["measured_from"])
            ends.append(data["measured_until"])
    return (min(starts), max(ends)) if starts else None



def percentiles(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9 and max in milliseconds, plus the count."""
    out = {f"p{p:g}_ms": histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    out["max_ms"] = histogram.get_max_value() / 1000
    out["count"] = float(histogram.get_total_count())
    return out
