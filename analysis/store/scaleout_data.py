"""The scale-out model's inputs, taken from a run: what analysis.store.scaleout predicts from.

- A node's cost: the target's CPU per request (µs) over the run's windows, median and
  range, closed-loop windows where the run has them (else those under a rate), one node,
  no delay line (a delay adds waiting, not CPU). A node of the deployment serves
  10^6 / that many requests per second per core.
- Store operations per request: the store's own per-command counts over the same windows
  (analysis.data.store_ops); under 0.05 is background work only (the revocation marker's
  heartbeat), and counts as a hot path that never calls the store. PostgreSQL counts no
  calls: there, the calls the ceiling file declares for the mode's hot path.
- The store's ceiling: store-ceiling.json (the dedicated step, the store alone on a core
  driven by redis-benchmark or pgbench with each mode's own commands), and, as its
  independent check, the store's CPU per operation measured in the cells.
- Measured points: closed-loop req/s of the same configuration at several node counts;
  points whose nodes outnumber the targets' cores share cores and show no scaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.cost.table import hot_rows
from analysis.store.ceiling import StoreCeilingRun, load_store_ceiling, mode_ceiling, mode_key
from analysis.store.distance import label_of
from analysis.store.scaleout import (
    STORE,
    ModeCosts,
    NodePoint,
    Prediction,
    StoreCeiling,
    TermCheck,
    check_terms,
    node_capacity_rps,
    predict,
)

BACKGROUND_OPS = 0.05  # store calls per request below this are the targets' heartbeat
NODES_SUFFIX = "-n"
SHARED_STORES = ("redis", "postgres")


def _node_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One hot row per window of one node without a delay line: closed loop if any."""
    hot = hot_rows(frame)
    if hot.empty:
        hot = hot_rows(frame, is_open=True)
    if hot.empty:
        return hot
    # A store in each node's memory (sessions, a memory blocklist) does not scale out at
    # all: what one node stores never reaches the others. The model leaves it out.
    per_node = (hot["store"] == "memory") & (
        (hot["mode"] == "session") | (hot["revocation"] == "blocklist"))
    keep = (hot["nodes"] == 1) & (hot["mode"] != "none") & ~per_node
    if "store_rtt_ms" in hot:
        keep &= hot["store_rtt_ms"].fillna(0) == 0
    return hot[keep]


@dataclass(frozen=True)
class ScaleoutInputs:
    """What the model rests on, per configuration, from one run."""

    modes: list[ModeCosts]
    stores: dict[str, StoreCeiling]  # by ModeCosts.key: that configuration's store term
    measured: list[NodePoint]
    target_bound_rps: dict[str, float]  # ModeCosts.key -> closed-loop req/s, target-bound
    ceiling: StoreCeilingRun | None
    ceiling_keys: dict[str, str]  # ModeCosts.key -> its hot path's name in store-ceiling.json


def scaleout_inputs(frame: pd.DataFrame, run: Path | None) -> ScaleoutInputs:
    """The model's inputs from a run's frame and its store-ceiling.json (if any)."""
    ceiling = load_store_ceiling(run) if run is not None else None
    modes, stores, bound, names = [], {}, {}, {}
    for config, group in _node_rows(frame).groupby("config", sort=False):
        first = group.iloc[0]
        cpu = group["target_cpu_us"].dropna()
        if cpu.empty:
            continue
        name = mode_key(str(first["mode"]), str(first["store"]), str(first["revocation"]))
        is_shared = first["store"] in SHARED_STORES
        calls = _store_calls(group, name, ceiling) if is_shared else 0.0
        if calls is None:
            continue  # a shared store whose calls per request nothing counted or declared
        mode = ModeCosts(str(config), label_of(first), float(cpu.median()),
                         (float(cpu.min()), float(cpu.max())), calls,
                         str(first["store"]) if is_shared else "memory")
        modes.append(mode)
        names[mode.key] = name
        if calls and ceiling is not None:
            ops_per_s = mode_ceiling(ceiling, names[mode.key])
            at_load = float(group["store_cpu_us"].median()) / calls
            if ops_per_s is not None:
                stores[mode.key] = StoreCeiling(mode.store_kind or "", ops_per_s,
                                                at_load if at_load > 0 else None)
        target = group[group["bottleneck"] == "target"]["rps"].dropna()
        if len(target) and (group["rate_spec"].fillna("") == "").all():
            bound[mode.key] = float(target.median())
    return ScaleoutInputs(modes, stores, measured_points(frame), bound, ceiling, names)


def _store_calls(group: pd.DataFrame, name: str, ceiling: StoreCeilingRun | None
                 ) -> float | None:
    """Store calls per request: as the store counted them (Redis), else as the ceiling
    file declares the mode's hot path (PostgreSQL counts no calls); None: neither."""
    counted = group["store_ops_per_request"].dropna() if "store_ops_per_request" in group \
        else pd.Series(dtype=float)
    if len(counted):
        ops = float(counted.median())
        return ops if ops >= BACKGROUND_OPS else 0.0
    if ceiling is None or name not in ceiling.modes:
        return None
    return float(sum(op.per_request for op in ceiling.modes[name]))


def measured_points(frame: pd.DataFrame) -> list[NodePoint]:
    """Closed-loop req/s per configuration and node count, where a run varied nodes."""
    hot = hot_rows(frame)
    if hot.empty or hot["nodes"].nunique() < 2:
        return []
    points = []
    for (config, nodes), group in hot.groupby(["config", "nodes"], sort=True):
        family = str(config).replace(f"{NODES_SUFFIX}{nodes}", f"{NODES_SUFFIX}1")
        points.append(NodePoint(family, int(nodes), float(group["rps"].median()),
                                not bool(group["is_oversubscribed"].any())))
    return points


def predictions(inputs: ScaleoutInputs, nodes: range = range(1, 129)) -> list[Prediction]:
    """The bound per configuration; a shared-store configuration without its store's
    ceiling is left out (nothing to cap it with)."""
    out = []
    for mode in inputs.modes:
        store = inputs.stores.get(mode.key)
        if mode.store_ops_per_request and store is None:
            continue
        out.append(predict(mode, store, list(nodes)))
    return out


def saturation_cpu_us(inputs: ScaleoutInputs, mode: ModeCosts) -> float | None:
    """The store's CPU µs per operation of mode's mix, in the saturation step itself."""
    if inputs.ceiling is None or mode.key not in inputs.ceiling_keys:
        return None
    needs = inputs.ceiling.modes.get(inputs.ceiling_keys[mode.key], ())
    found = [inputs.ceiling.operation(op.store, op.operation) for op in needs]
    if not found or any(f is None or f.cpu_us_per_op is None for f in found):
        return None
    calls = sum(op.per_request for op in needs)
    return sum(op.per_request * f.cpu_us_per_op for op, f in zip(needs, found, strict=True)
               if f is not None and f.cpu_us_per_op is not None) / calls


def term_checks(inputs: ScaleoutInputs) -> list[TermCheck]:
    """Each term against an independent measurement. Node: 10^6 / CPU µs per request
    against a closed-loop window the target bound. Store: the counted saturation
    throughput against 10^6 / the store's own CPU µs per operation, in the saturation
    step (how far the store's CPU accounts for what the client counted) and in the cells
    (at their load, where each call pays its own event-loop wake-up: a pessimistic bound)."""
    checks = check_terms(inputs.modes, inputs.target_bound_rps)
    for mode in inputs.modes:  # one store term per configuration: its own operations
        store = inputs.stores.get(mode.key)
        if store is None or store.ops_per_s <= 0:
            continue
        at_saturation = saturation_cpu_us(inputs, mode)
        for where, cpu_us in (("at saturation", at_saturation),
                              ("at the cells' load", store.cpu_us_per_op_at_load)):
            if cpu_us:
                checks.append(TermCheck(STORE, f"{mode.label}, CPU per operation {where}",
                                        node_capacity_rps(cpu_us, store.cores), store.ops_per_s))
    return checks
