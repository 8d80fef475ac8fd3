"""Pure summaries per configuration: percentiles from histograms merged over repeats.

Percentiles are never averaged: the histograms of every repeat (and every Locust
process) of a configuration are added, and the percentiles are read off the sum.
Throughput is the median over repeats, with its spread (coefficient of variation).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.hdr import HIGHEST_US, LOWEST_US, SIGNIFICANT_FIGURES, load_cell_histograms

HOT = "GET /api/me"


def spread(values: pd.Series) -> float:
    """Coefficient of variation (std / mean); NaN for fewer than two values."""
    clean = values.dropna()
    if len(clean) < 2 or clean.mean() == 0:
        return math.nan
    return float(clean.std() / clean.mean())


def merged_histograms(run: Path, cells: list[str], endpoint: str) -> HdrHistogram:
    """One histogram holding every request of endpoint over the given cells."""
    total = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    for cell in cells:
        histograms, _ = load_cell_histograms(run / "cells" / cell)
        if endpoint in histograms:
            total.add(histograms[endpoint])
    return total


def config_table(run: Path, frame: pd.DataFrame, endpoint: str = HOT) -> pd.DataFrame:
    """One row per configuration key: merged percentiles, median req/s and its spread."""
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == endpoint)]
    rows = []
    for key, group in hot.groupby("key", sort=False):
        cells = group["cell"].tolist()
        latency = merged_histograms(run, cells, endpoint)
        auth = merged_histograms(run, cells, f"auth {endpoint}")
        first = group.iloc[0]
        row = {
            "key": key, "mode": first["mode"], "store": first["store"], "alg": first["alg"],
            "revocation": first["revocation"], "users": first["users"],
            "nodes": first["nodes"], "scale": first["scale"], "repeats": len(group),
            "rps": float(group["rps"].median()), "rps_spread": spread(group["rps"]),
            "requests": int(latency.get_total_count()),
            "error_rate": float(group["error_rate"].fillna(0).median()),
            "cpu_ms_per_request": float(group["cpu_ms_per_request"].median()),
        }
        for p, name in ((50, "p50_ms"), (90, "p90_ms"), (99, "p99_ms"), (99.9, "p99_9_ms")):
            row[name] = latency.get_value_at_percentile(p) / 1000
        row["max_ms"] = latency.get_max_value() / 1000
        row["auth_p50_ms"] = (auth.get_value_at_percentile(50) / 1000
                              if auth.get_total_count() else math.nan)
        rows.append(row)
    return pd.DataFrame(rows)
