"""Pure summaries per configuration: percentiles from histograms merged over repeats.

Percentiles are never averaged: the histograms of every repeat (and every Locust
process) of a configuration are added, and the percentiles are read off the sum.
Throughput is the median over repeats, with its spread (coefficient of variation).

A configuration's cost is the answer's (analysis.cost.table.cost_table: closed-loop windows):
a row of closed-loop windows carries it, a row of fixed-rate windows carries none (its
CPU per request under a schedule is another measurement) and leaves out the windows
whose load generator fell short, as the answer's latency at equal load does. Rows come
in the answer's order, each configuration's closed loop first, then its fixed rates.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.cost.table import CLOSED_LOOP, answer_order, cost_table
from analysis.data.endpoints import ME
from analysis.data.hdr import load_cell_histograms, merge, percentiles, timing
from analysis.latency.equal_load import window_flags


def spread(values: pd.Series) -> float:
    """Coefficient of variation (std / mean); NaN for fewer than two values."""
    clean = values.dropna()
    if len(clean) < 2 or clean.mean() == 0:
        return math.nan
    return float(clean.std() / clean.mean())


def window_of(rate_spec: object) -> str:
    """Which windows a row's figures come from: 'closed loop' or 'fixed rate 50%'."""
    spec = "" if rate_spec is None or (isinstance(rate_spec, float) and math.isnan(rate_spec)) \
        else str(rate_spec)
    return f"fixed rate {spec}" if spec else CLOSED_LOOP


def _kept(group: pd.DataFrame) -> pd.DataFrame:
    """A fixed rate's windows that equal load keeps (its generator delivered the rate, did
    not stall, and no other program took the CPU: window_flags); all of a closed loop's."""
    if "is_generator_short" not in group or window_of(group["rate_spec"].iloc[0]) == CLOSED_LOOP:
        return group
    is_short, is_disturbed, is_stalled = window_flags(
        group.assign(is_generator_short=group["is_generator_short"].fillna(False)))
    return group[~is_short & ~is_disturbed & ~is_stalled]


def config_table(run: Path, frame: pd.DataFrame, endpoint: str = ME) -> pd.DataFrame:
    """One row per configuration key: merged percentiles, median req/s and its spread; the
    cost (cost_us, cpu_ms_per_request: target + store CPU) from cost_table.

    Columns beyond the percentiles: key, config, window ('closed loop' or 'fixed rate
    SPEC'), repeats, left_out (fixed-rate windows equal load leaves out), rps,
    rps_spread, requests, error_rate, cost_us, cpu_ms_per_request, auth_p50_ms.
    """
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == endpoint)]
    if "rate_spec" not in hot:
        hot = hot.assign(rate_spec="")
    if "config" not in hot:
        hot = hot.assign(config=hot["key"])
    costs = cost_table(frame)
    cost_of = dict(zip(costs["key"], costs["server_cpu_us"], strict=True)) \
        if not costs.empty else {}
    rows = []
    for key, every in hot.groupby("key", sort=False):
        group = _kept(every)
        first = every.iloc[0]
        window = window_of(first["rate_spec"])
        cells = [load_cell_histograms(run / "cells" / cell)[0] for cell in group["cell"]]
        # The files keep an API's own request names (analysis.data.apis).
        source = str(first.get("api_endpoint") or endpoint)
        auth_name = timing("auth", source)
        latency = merge(c[source] for c in cells if source in c)
        auth = merge(c[auth_name] for c in cells if auth_name in c)
        cost = cost_of.get(key, math.nan) if window == CLOSED_LOOP else math.nan
        rows.append({
            "key": key, "config": first["config"], "window": window, "mode": first["mode"],
            "store": first["store"], "alg": first["alg"], "revocation": first["revocation"],
            "users": first["users"], "nodes": first["nodes"], "scale": first["scale"],
            "repeats": len(group), "left_out": len(every) - len(group),
            "rps": float(group["rps"].median()) if len(group) else math.nan,
            "rps_spread": spread(group["rps"]),
            "requests": int(latency.get_total_count()) if latency else 0,
            "error_rate": float(group["error_rate"].fillna(0).median())
            if len(group) else math.nan,
            "cost_us": cost, "cpu_ms_per_request": cost / 1000,
            **percentiles(latency),
            "auth_p50_ms": percentiles(auth)["p50_ms"],
        })
    return _in_answer_order(pd.DataFrame(rows), answer_order(costs))


def _in_answer_order(table: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Rows by their configuration's place in the answer (unranked ones after, as they
    came), each configuration's closed loop first, then its fixed rates."""
    if table.empty:
        return table
    configs = list(dict.fromkeys(table["config"]))
    rank = [order.index(c) if c in order else len(order) + configs.index(c)
            for c in table["config"]]
    is_open = [w != CLOSED_LOOP for w in table["window"]]
    return (table.assign(_rank=rank, _open=is_open, _came=range(len(table)))
            .sort_values(["_rank", "_open", "_came"])
            .drop(columns=["_rank", "_open", "_came"]).reset_index(drop=True))
