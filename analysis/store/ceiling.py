"""The shared store's ceiling (store-ceiling.json, from `authbench bench-store`).

What one store can serve, per mode: the store term of a cluster's bound,
min(N x node capacity, store capacity / store operations per request). The file holds
each operation's saturation throughput and CPU per operation, measured with the store
alone on a core, and which operations each mode's request makes (written by the
harness: analysis does not read the targets' code). Pure Python, no pandas: the
harness reads it too.

A request that makes several store operations spends the store's time on each in turn,
so a store serves 1 / sum(per_request / ops_per_s) such requests per second (with one
operation: ops_per_s / per_request).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.data.formats import STORE_CEILING, check_format, load_json

RESULT_FILE = "store-ceiling.json"


@dataclass(frozen=True)
class OperationCeiling:
    """One store operation at saturation: the median over the repeats, and their range."""

    store: str
    operation: str
    command: str
    ops_per_s: float
    ops_per_s_range: tuple[float, float]
    cpu_us_per_op: float | None
    limited_by: str
    clients: int
    # The store's CPU per op at 100 % of its cores: the ceiling's estimate when the
    # benchmark client ran out first (ops_per_s is then a lower bound).
    ops_per_s_at_full_cpu: float | None
    disturbed_repeats: int  # repeats in which other processes shared the CPUs

    @property
    def is_store_bound(self) -> bool:
        """True when the store's CPU ran out in every repeat (the figure is its ceiling)."""
        return self.limited_by in ("store", "store and client")


@dataclass(frozen=True)
class ModeOperation:
    """A store operation a mode's request makes, and how many times per request."""

    store: str
    operation: str
    per_request: float


@dataclass(frozen=True)
class PeriodicOperation:
    """A store operation made at most once per every_s per `per` (a session's touch)."""

    store: str
    operation: str
    every_s: float
    per: str


@dataclass(frozen=True)
class StoreRun:
    """How one store was measured: its server, the tool, where each ran."""

    store: str
    version: str
    tool: str
    is_pinned: bool
    store_cpus: tuple[int, ...]
    client_cpus: tuple[int, ...]


@dataclass(frozen=True)
class StoreCeilingRun:
    """A run's store ceilings: per (store, operation), and per mode what a request needs."""

    stores: Mapping[str, StoreRun]
    operations: Mapping[tuple[str, str], OperationCeiling]
    modes: Mapping[str, tuple[ModeOperation, ...]]
    periodic: Mapping[str, tuple[PeriodicOperation, ...]]
    skipped: Mapping[str, str]  # store -> why it was not measured

    def operation(self, store: str, operation: str) -> OperationCeiling | None:
        """The ceiling of one operation, None when it was not measured."""
        return self.operations.get((store, operation))

    def describe(self) -> list[str]:
        """One line per store and per operation, with what limited each figure."""
        lines = []
        for run in self.stores.values():
            where = (f"alone on CPU {_cpus(run.store_cpus)}, the client on CPU "
                     f"{_cpus(run.client_cpus)}" if run.is_pinned
                     else "sharing CPUs with the client")
            lines.append(f"{run.store} {run.version}, {where}, driven by {run.tool}:")
            for op in self.operations.values():
                if op.store == run.store:
                    cost = "" if op.cpu_us_per_op is None else \
                        f", {op.cpu_us_per_op:.2f} CPU µs/op"
                    low, high = op.ops_per_s_range
                    lines.append(f"  {op.operation}: {op.ops_per_s:,.0f} ops/s ({low:,.0f} to "
                                 f"{high:,.0f}, {op.clients} clients){cost}; limited by "
                                 f"{op.limited_by}{_estimate(op)}{_disturbed(op)}")
        lines += [f"{store}: not measured ({why})" for store, why in self.skipped.items()]
        return lines


def _estimate(op: OperationCeiling) -> str:
    """Where the store did not run out: the figure is a floor, and what its CPU implies."""
    if op.is_store_bound:
        return ""
    implied = "" if op.ops_per_s_at_full_cpu is None else \
        f"; its CPU per op implies {op.ops_per_s_at_full_cpu:,.0f} ops/s at 100 %"
    return f" (a lower bound: the store was not saturated{implied})"


def _disturbed(op: OperationCeiling) -> str:
    if not op.disturbed_repeats:
        return ""
    return f"; other work shared the CPUs in {op.disturbed_repeats} repeat(s)"


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(map(str, cpus))


def mode_key(mode: str, store: str, revocation: str = "none") -> str:
    """The key of a configuration in `modes`: '<mode>-<store>[-<revocation>]'."""
    if mode in ("jwt", "hybrid") and revocation != "none":
        return f"{mode}-{store}-{revocation}"
    return f"{mode}-{store}"


def _operation(store: str, name: str, entry: Mapping[str, Any]) -> OperationCeiling:
    rates = [float(r) for r in entry["ops_per_s"]]
    cost = entry.get("cpu_us_per_op_median")
    return OperationCeiling(store, name, str(entry["command"]),
                            float(entry["ops_per_s_median"]), (min(rates), max(rates)),
                            None if cost is None else float(cost), str(entry["limited_by"]),
                            int(entry["clients"]), _number(entry.get("ops_per_s_at_full_cpu")),
                            int(entry.get("disturbed_repeats", 0)))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_store_ceiling(data: Mapping[str, Any], path: Path | str = RESULT_FILE
                        ) -> StoreCeilingRun:
    """A StoreCeilingRun from store-ceiling.json's content; refuses a format it does not know."""
    check_format(path, data, STORE_CEILING)
    operations = {(store, name): _operation(store, name, entry)
                  for store, measured in data["stores"].items()
                  for name, entry in measured["operations"].items()}
    modes = {key: tuple(ModeOperation(o["store"], o["operation"], float(o["per_request"]))
                        for o in entry["per_request"])
             for key, entry in data["modes"].items()}
    periodic = {key: tuple(PeriodicOperation(o["store"], o["operation"], float(o["every_s"]),
                                             str(o["per"]))
                           for o in entry.get("periodic", []))
                for key, entry in data["modes"].items()}
    stores = {store: StoreRun(store, str(m["server"]["version"]), str(m["tool"]),
                              bool(m["is_pinned"]), tuple(m["store_cpus"]),
                              tuple(m["client_cpus"]))
              for store, m in data["stores"].items()}
    return StoreCeilingRun(stores, operations, modes, periodic, dict(data.get("skipped", {})))


def load_store_ceiling(run_path: Path) -> StoreCeilingRun | None:
    """The run's store-ceiling.json as a StoreCeilingRun; None when the run has none."""
    path = run_path / RESULT_FILE
    if not path.is_file():
        return None
    return parse_store_ceiling(load_json(path, STORE_CEILING), path)


def _periodic_share(ceiling: StoreCeilingRun, mode: str, active_sessions: int) -> float | None:
    """The share of the store's time the mode's periodic operations take (None: unmeasured)."""
    share = 0.0
    for op in ceiling.periodic.get(mode, ()):
        found = ceiling.operation(op.store, op.operation)
        if found is None:
            return None
        share += active_sessions / op.every_s / found.ops_per_s
    return share


def store_capacity_rps(ceiling: StoreCeilingRun, mode: str, active_sessions: int = 0
                       ) -> float | None:
    """Requests/s one store can serve for mode (a mode_key); inf when it calls no store.

    active_sessions: sessions making requests at least once per touch interval; their
    touches take their share of the store first. None: an unknown mode, or an operation
    it needs was not measured.
    """
    needs = ceiling.modes.get(mode)
    if needs is None:
        return None
    if not needs:
        return math.inf
    seconds = 0.0
    for op in needs:
        found = ceiling.operation(op.store, op.operation)
        if found is None:
            return None
        seconds += op.per_request / found.ops_per_s
    busy = _periodic_share(ceiling, mode, active_sessions) if active_sessions else 0.0
    if busy is None:
        return None
    return max(0.0, 1.0 - busy) / seconds


def mode_ceiling(ceiling: StoreCeilingRun, mode: str) -> float | None:
    """Store operations/s at saturation for mode's mix of operations (a mode_key).

    Divided by the store operations one request makes, it gives the store's requests/s.
    None: an unknown mode, one whose requests call no store, or an operation not measured.
    """
    needs = ceiling.modes.get(mode)
    if not needs:
        return None
    capacity = store_capacity_rps(ceiling, mode)
    if capacity is None:
        return None
    return capacity * sum(op.per_request for op in needs)


def store_cpu_us_per_request(ceiling: StoreCeilingRun, mode: str) -> float | None:
    """The store's CPU µs one request of mode costs (0 with no store call; None: unmeasured)."""
    needs = ceiling.modes.get(mode)
    if needs is None:
        return None
    total = 0.0
    for op in needs:
        found = ceiling.operation(op.store, op.operation)
        if found is None or found.cpu_us_per_op is None:
            return None
        total += op.per_request * found.cpu_us_per_op
    return total


def cluster_bound_rps(node_rps: float, nodes: int, store_rps: float | None) -> float | None:
    """min(N x node capacity, store capacity): the most N nodes sharing one store serve.

    None when the store's capacity is unknown: an unmeasured store is no proof of none.
    """
    if store_rps is None:
        return None
    return min(nodes * node_rps, store_rps)
