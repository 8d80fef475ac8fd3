"""When the answer changes, the store's side: the break-evens that rest on its ceiling.

- nodes: how many nodes one store serves before it caps sessions: the store's req/s (its
  ceiling for the session's command / store calls per request) over one node's (10^6 /
  the target's CPU µs per request), as analysis.store.scaleout bounds a cluster.
- blocklist rate: the request rate from which a blocklist's store is the bottleneck: the
  store's ceiling for the check's command / store calls per request.

Pure functions of the tidy frame and store-ceiling.json (analysis.store.ceiling).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.cost.table import Interval
from analysis.report.formatting import number
from analysis.store.ceiling import StoreCeilingRun, load_store_ceiling, mode_ceiling, mode_key
from analysis.store.distance import label_of
from analysis.store.scaleout import STORE_NAMES
from analysis.store.scaleout_data import BACKGROUND_OPS, SHARED_STORES, predictions, scaleout_inputs
from analysis.verdict.breakeven import (
    BLOCKLIST,
    NODES,
    REDIS_RUN,
    BreakEven,
    cost_windows,
    missing,
)

CEILING = ("`authbench bench-store --into <run>` (or the suite extra `store-ceiling`) "
           "measures the store's ceiling")


def _ceiling_text(ceiling: StoreCeilingRun, key: str) -> list[str]:
    """Each store operation a mode's request makes, at saturation, with what limited it."""
    said = []
    for op in ceiling.modes.get(key, ()):
        found = ceiling.operation(op.store, op.operation)
        if found is not None:
            low, high = found.ops_per_s_range
            bound = "" if found.is_store_bound else ": a lower bound, the store was not saturated"
            said.append(f"{STORE_NAMES.get(op.store, op.store)}'s ceiling for {op.operation} "
                        f"(`{found.command.split()[0]}`): {number(found.ops_per_s, 0)} ops/s "
                        f"({number(low, 0)} to {number(high, 0)}), limited by "
                        f"{found.limited_by}{bound}")
    return said


def _by_config(rows: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame]]:
    """Each configuration's windows with its reader's name (and users, where they varied)."""
    users = "" if rows.empty or rows["users"].nunique() < 2 else ", {} users"
    return {str(c): (label_of(g.iloc[0]) + users.format(g.iloc[0]["users"]), g)
            for c, g in rows.groupby("config", sort=False)}


def nodes_to_cap(frame: pd.DataFrame, run: Path | None) -> list[BreakEven]:
    """Nodes from which one store caps sessions: the store's req/s (its ceiling / its calls
    per request) over one node's (10^6 / the target's CPU µs per request), as
    analysis.store.scaleout bounds a cluster."""
    hot, _ = cost_windows(frame)
    configs = _by_config(hot[(hot["mode"] == "session") & hot["store"].isin(SHARED_STORES)]
                         if len(hot) else hot)
    if not configs:
        return [missing(NODES, "sessions in a shared store", f"{REDIS_RUN} measures them")]
    inputs = scaleout_inputs(frame, run)
    modes = {m.key: m for m in inputs.modes}
    predicted = {p.mode.key: p for p in predictions(inputs)}
    out = []
    for config, (label, _) in configs.items():
        mode, p = modes.get(config), predicted.get(config)
        if mode is None or p is None or inputs.ceiling is None:
            out.append(missing(NODES, f"the store's ceiling for {label}", CEILING))
            continue
        low_us, high_us = mode.node_cpu_us_range or (mode.node_cpu_us, mode.node_cpu_us)
        rests = [f"one node: {number(p.node_rps, 0)} req/s = 10^6 / "
                 f"{number(mode.node_cpu_us, 1)} µs of target CPU per request (median over "
                 f"its windows, {number(low_us, 1)} to {number(high_us, 1)})",
                 *_ceiling_text(inputs.ceiling, inputs.ceiling_keys[mode.key]),
                 f"{number(mode.store_ops_per_request, 2)} store calls per request: one "
                 f"store serves {number(p.store_rps, 0)} of its requests per second"]
        rests += [f"measured: {n.nodes} node(s) served {number(n.rps, 0)} req/s, closed loop"
                  + ("" if n.is_separate_cores else " (on shared cores)")
                  for n in inputs.measured if n.key == mode.key]
        point, value = "never: its requests make no store call", None
        if p.cap_nodes is not None:
            low, high = p.cap_nodes_range or (p.cap_nodes, p.cap_nodes)
            spread = f" ({low} to {high} over the node cost's range)" if low != high else ""
            point, value = f"{p.cap_nodes} nodes{spread}", float(p.cap_nodes)
        out.append(BreakEven(NODES, label, point, "the scale-out model: min(N x one "
                             "node's req/s, the store's req/s), extrapolated beyond the "
                             "nodes that ran", tuple(rests), value, "nodes"))
    return out


def _store_calls(group: pd.DataFrame, ceiling: StoreCeilingRun, key: str, windows: str
                 ) -> tuple[Interval, str]:
    """Store calls per request: as the store counted them over the windows (Redis), else as
    store-ceiling.json declares the hot path (PostgreSQL counts no calls)."""
    counted = group["store_ops_per_request"].dropna() if "store_ops_per_request" in group \
        else pd.Series(dtype=float)
    if len(counted):
        return Interval.of(counted), f"counted by the store over {len(counted)} {windows}"
    declared = float(sum(op.per_request for op in ceiling.modes.get(key, ())))
    return Interval(declared, declared, declared, 1), ("as store-ceiling.json declares its "
                                                       "hot path (PostgreSQL counts none)")


def _rate_range(ceiling: StoreCeilingRun, key: str, calls: Interval) -> str:
    """The rate's range over the ceiling's repeats and the calls' windows (one operation)."""
    needs = ceiling.modes.get(key, ())
    found = ceiling.operation(needs[0].store, needs[0].operation) if len(needs) == 1 else None
    if found is None or not calls.low > 0:
        return ""
    (low, high), per = found.ops_per_s_range, needs[0].per_request
    return f" ({number(low / per / calls.high, 0)} to {number(high / per / calls.low, 0)})"


def blocklist_rate(frame: pd.DataFrame, run: Path | None) -> list[BreakEven]:
    """The request rate from which a blocklist's store is the bottleneck: the store's
    ceiling for the check's command / the store calls per request."""
    hot, windows = cost_windows(frame)
    blocklists = hot[(hot["revocation"] == "blocklist") & hot["store"].isin(SHARED_STORES)
                     & hot["mode"].isin(("jwt", "hybrid"))] if len(hot) else hot
    if blocklists.empty:
        return [missing(BLOCKLIST, "a JWT blocklist in a shared store",
                        f"{REDIS_RUN} measures one")]
    ceiling = load_store_ceiling(run) if run is not None else None
    out = []
    for label, group in _by_config(blocklists).values():
        first = group.iloc[0]
        key = mode_key(str(first["mode"]), str(first["store"]), "blocklist")
        ops_per_s = mode_ceiling(ceiling, key) if ceiling is not None else None
        if ceiling is None or ops_per_s is None:
            out.append(missing(BLOCKLIST, f"the store's ceiling for {label}", CEILING))
            continue
        calls, counted = _store_calls(group, ceiling, key, windows)
        rests = [*_ceiling_text(ceiling, key), f"{calls.text(3)} store calls per request, "
                 f"{counted}"]
        if calls.median < BACKGROUND_OPS:
            out.append(BreakEven(BLOCKLIST, label, "never: its requests make no store call",
                                 "store calls per request", tuple(rests)))
            continue
        rate = ops_per_s / calls.median
        cpu = Interval.of(group["target_cpu_us"])
        point = f"{number(rate, 0)} req/s{_rate_range(ceiling, key, calls)}"
        if cpu.n and cpu.median > 0:
            point += f", about {math.ceil(rate * cpu.median / 1e6)} nodes like this run's"
            rests.append(f"one node: {number(1e6 / cpu.median, 0)} req/s = 10^6 / "
                         f"{cpu.text(1)} µs of target CPU per request")
        out.append(BreakEven(BLOCKLIST, label, point, "the store's ceiling for "
                             "the check's command / the store calls per request",
                             tuple(rests), rate, "req/s"))
    return out
