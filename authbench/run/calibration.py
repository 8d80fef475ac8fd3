"""What rates that are shares are shares of: the floor's capacity, measured at the start
of a run, and the dearest configuration's capacity, read off the first rounds.

A suite may give open-model rates as shares of the floor ("50%"): the requests per
second that the no-auth target served in a short closed-loop window on this machine,
with the same scenario, users and nodes as the cells that use the shares. The run
records the figure (metadata.json "calibration") and each cell its absolute rate, so
the shares mean something on any machine and the run says what they meant on this one.
A resumed run reuses its recorded figure.

A share of the dearest ("40%dearest") is of the dearest configuration's capacity: each
configuration offered it gets its capacity from its closed-loop windows of the first
BASIS_ROUNDS rounds, as req/s on one core from its CPU per request (target and store,
every request of the mix; 10^6 / µs, the answer's "req/s per core"), the median over
those windows; the lowest is the dearest's, and metadata.json "dearest" keeps it. A
share well under half of it is a rate every configuration serves well below its knee,
where any pause multiplies the tail. CPU per request, not the window's req/s: another
program taking the CPU in one window cut req/s 2.7-fold in a measured run and CPU per
request by a fifth. A window without a CPU figure (an API's processes not claimed)
counts by its req/s. The runner runs those shares a round late (runner.plan).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.cost.table import hot_rows
from analysis.data.hdr import is_timing, load_cell_histograms
from analysis.data.load import load_run
from authbench.run.cell import DEAREST, Cell
from authbench.run.progress import Progress
from authbench.run.rig import CellFailed, Rig
from authbench.run.rundir import RunDir

WARMUP_SECONDS = 1.0
MEASURED_SECONDS = 3.0
FOLDER = "calibration"


class CalibrationFailed(RuntimeError):
    """The floor could not be measured, so no share of it can be offered."""


@dataclass(frozen=True)
class Calibration:
    """The floor's closed-loop capacity on this machine, and how it was measured."""

    cell: Cell
    requests: int
    seconds: float

    @property
    def capacity_rps(self) -> float:
        return self.requests / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {"capacity_rps": self.capacity_rps, "cell": self.cell.as_dict(),
                "cell_key": self.cell.key, "requests": self.requests, "seconds": self.seconds,
                "folder": FOLDER}


def floor_cell(cells: Iterable[Cell]) -> Cell | None:
    """The closed-loop no-auth cell to measure, or None when no cell offers a share."""
    sharing = [c for c in cells if c.rate_fraction is not None]
    if not sharing:
        return None
    first = sharing[0]
    # An API's floor is its adapter's [floor] request (authbench.run.apisuite).
    api = "floor" if first.api else ""
    return Cell(mode="none", scenario=first.scenario, users=max(c.users for c in sharing),
                nodes=first.nodes, workers=first.workers, balance=first.balance,
                duration=MEASURED_SECONDS, warmup=WARMUP_SECONDS, api=api)


def is_floor_rig(rig: Rig, floor: Cell) -> bool:
    """True when an interleaved run's rig can measure the floor as it is (a rig's cell
    has no rate: rigs are kept per configuration)."""
    same = ("mode", "scenario", "users", "nodes", "workers", "balance", "fault", "spawn_rate",
            "api")
    return all(getattr(rig.cell, name) == getattr(floor, name) for name in same)


def measure_floor(rig: Rig, run_path: Path) -> Calibration:
    """One closed-loop window of the floor's rig: requests per measured second."""
    folder = run_path / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    try:
        record = rig.measure(folder, WARMUP_SECONDS, MEASURED_SECONDS)
    except CellFailed as exc:
        raise CalibrationFailed(f"the floor could not be measured: {exc}") from None
    if record["window"].get("is_short"):
        missing = record["window"]["missing_workers"]
        raise CalibrationFailed(f"the floor's window was short: {missing}")
    requests, failed, seconds = window_counts(folder, record)
    if not requests or failed > 0.01 * requests:
        raise CalibrationFailed(f"the floor answered {requests} requests and failed {failed} "
                                f"in {seconds:.1f} s")
    return Calibration(rig.cell, requests, seconds)


def window_counts(folder: Path, record: dict[str, Any]) -> tuple[int, int, float]:
    """A measured window's answered and failed requests, and its measured seconds."""
    histograms, failures = load_cell_histograms(folder)
    requests = sum(int(h.get_total_count()) for name, h in histograms.items()
                   if not is_timing(name))
    window = record["window"]
    return requests, sum(failures.values()), window["measure_until"] - window["measure_from"]


@dataclass(frozen=True)
class Dearest:
    """The dearest configuration's capacity in the first rounds: what "N%dearest" is a
    share of."""

    key: str  # the dearest configuration
    rps: float  # its capacity: req/s on one core from its CPU per request (or its req/s)
    windows: dict[str, float]  # each window's folder name and capacity (of all configurations)
    basis: str  # how the capacity was read (CPU_BASIS or SERVED_BASIS)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "rps": self.rps, "windows": self.windows, "basis": self.basis}


# Closed-loop rounds a share of the dearest is read off: in two back-to-back runs the first
# round alone gave 2,966 and 2,288 req/s (the second run's first round was slow for every
# configuration, 240 against 312 µs for the hybrid); the open windows run a round late.
BASIS_ROUNDS = 2
CPU_BASIS = "req/s on one core: 10^6 / CPU µs per request (target and store)"
SERVED_BASIS = "closed-loop req/s (a window without a CPU figure)"


def dearest_windows(order: Iterable[tuple[str, Cell, int]]) -> dict[str, str]:
    """The folder name and configuration of each closed-loop window of the first
    BASIS_ROUNDS rounds of every configuration offered a share of the dearest."""
    items = list(order)
    configs = {cell.config for _, cell, _ in items if cell.dearest_fraction is not None}
    return {name: cell.key for name, cell, repeat in items
            if repeat <= BASIS_ROUNDS and not cell.rate and cell in configs}


def measure_dearest(run: Path, keys: dict[str, str]) -> Dearest:
    """The lowest capacity among the configurations in keys (folder name: configuration),
    each its median over its closed-loop windows that ended ok with at most 1 % of their
    requests failed."""
    frame = load_run(run)
    windows: dict[str, float] = {}
    bases: set[str] = set()
    named = frame[frame["cell"].isin(list(keys))] if "cell" in frame else frame.iloc[0:0]
    for cell, rows in named.groupby("cell") if len(named) else ():
        hot = hot_rows(rows)
        if hot.empty or not hot["error_rate"].iloc[0] <= 0.01:
            continue
        cost = float(hot["server_cpu_us"].iloc[0])
        if math.isfinite(cost) and cost > 0:
            windows[str(cell)], basis = 1e6 / cost, CPU_BASIS
        else:  # every request of the mix, over the measured seconds
            windows[str(cell)] = float(rows["requests"].sum() / rows["measured_seconds"].iloc[0])
            basis = SERVED_BASIS
        bases.add(basis)
    if not windows:
        raise CalibrationFailed(f"no closed-loop window of the first rounds ended ok, so a "
                                f"share of the {DEAREST} has nothing to be a share of")
    by_config: dict[str, list[float]] = {}
    for name, capacity in windows.items():
        by_config.setdefault(keys[name], []).append(capacity)
    capacities = {key: statistics.median(values) for key, values in by_config.items()}
    dearest = min(capacities, key=capacities.__getitem__)
    return Dearest(dearest, capacities[dearest], windows, "; ".join(sorted(bases)))


def recorded_dearest(recorded: dict[str, Any]) -> Dearest:
    """A run's metadata.json "dearest", as measure_dearest gave it (a resumed run)."""
    return Dearest(recorded["key"], float(recorded["rps"]), dict(recorded["windows"]),
                   str(recorded.get("basis", "")))


@dataclass
class DearestRate:
    """What "N%dearest" rates are a share of, read once the first rounds' closed-loop
    windows are in (a resumed run's recorded figure); why not, as text."""

    run: RunDir
    windows: dict[str, str]  # calibration.dearest_windows of the run's plan
    value: Dearest | str | None = None

    def of(self, cell: Cell, progress: Progress) -> Dearest | str | None:
        """The basis of cell's rate (None: its rate is not a share of the dearest)."""
        if cell.dearest_fraction is None:
            return None
        if self.value is None:
            recorded = self.run.metadata().get("dearest")
            try:
                self.value = recorded_dearest(recorded) if recorded else \
                    measure_dearest(self.run.path, self.windows)
            except CalibrationFailed as exc:
                self.run.update_metadata(dearest_failed=str(exc))
                self.value = str(exc)
                progress.note(f"{exc}; the cells offering a share of it fail")
                return self.value
            self.run.update_metadata(dearest=self.value.as_dict())
            progress.note(f"the dearest: {self.value.key}, {self.value.rps:,.0f} "
                          f"{self.value.basis}, the median of its closed-loop windows so "
                          f"far; {cell.rate} = "
                          f"{cell.offered_rate(None, self.value.rps):,.0f} req/s")
        return self.value

