"""Pure summaries per configuration: percentiles from histograms merged over repeats.

Percentiles are never averaged: the histograms of every repeat (and every Locust
process) of a configuration are added, and the percentiles are read off the sum.
Throughput is the median over repeats, with its spread (coefficient of variation).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.endpoints import ME
from analysis.hdr import load_cell_histograms, merge, percentiles, timing


def spread(values: pd.Series) -> float:
    """Coefficient of variation (std / mean); NaN for fewer than two values."""
    clean = values.dropna()
    if len(clean) < 2 or clean.mean() == 0:
        return math.nan
    return float(clean.std() / clean.mean())


def config_table(run: Path, frame: pd.DataFrame, endpoint: str = ME) -> pd.DataFrame:
    """One row per configuration key: merged percentiles, median req/s and its spread."""
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == endpoint)]
    rows = []
    for key, group in hot.groupby("key", sort=False):
        cells = [load_cell_histograms(run / "cells" / cell)[0] for cell in group["cell"]]
        first = group.iloc[0]
        # The files keep an API's own request names (analysis.apis).
        source = str(first.get("api_endpoint") or endpoint)
        auth_name = timing("auth", source)
        latency = merge(c[source] for c in cells if source in c)
        auth = merge(c[auth_name] for c in cells if auth_name in c)
        rows.append({
            "key": key, "mode": first["mode"], "store": first["store"], "alg": first["alg"],
            "revocation": first["revocation"], "users": first["users"],
            "nodes": first["nodes"], "scale": first["scale"], "repeats": len(group),
            "rps": float(group["rps"].median()), "rps_spread": spread(group["rps"]),
            "requests": int(latency.get_total_count()) if latency else 0,
            "error_rate": float(group["error_rate"].fillna(0).median()),
            "cpu_ms_per_request": float(group["cpu_ms_per_request"].median()),
            **percentiles(latency),
            "auth_p50_ms": percentiles(auth)["p50_ms"],
        })
    return pd.DataFrame(rows)
