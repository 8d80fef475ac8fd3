"""What rates that are shares are shares of: the floor's capacity, measured at the start
of a run, and the dearest configuration's closed-loop req/s, read off the first round.

A suite may give open-model rates as shares of the floor ("50%"): the requests per
second that the no-auth target served in a short closed-loop window on this machine,
with the same scenario, users and nodes as the cells that use the shares. The run
records the figure (metadata.json "calibration") and each cell its absolute rate, so
the shares mean something on any machine and the run says what they meant on this one.
A resumed run reuses its recorded figure.

A share of the dearest ("50%dearest") is of the lowest req/s among the closed-loop
windows of the first round of the configurations offered it (metadata.json "dearest"):
a rate every one of them served twice over, so none is measured on its knee, where any
pause multiplies the tail. The runner puts those windows first in each round.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.formats import CELL, load_json
from analysis.hdr import is_timing, load_cell_histograms
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
    """The lowest closed-loop req/s of the first round: what "N%dearest" is a share of."""

    key: str  # the configuration that served it
    rps: float
    windows: dict[str, float]  # each window's folder name and req/s

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "rps": self.rps, "windows": self.windows}


def dearest_windows(order: Iterable[tuple[str, Cell, int]]) -> dict[str, str]:
    """The folder name and configuration of each closed-loop window of the first round of
    every configuration offered a share of the dearest (none: no cell is)."""
    items = list(order)
    configs = {cell.config for _, cell, _ in items if cell.dearest_fraction is not None}
    return {name: cell.key for name, cell, repeat in items
            if repeat == 1 and not cell.rate and cell in configs}


def measure_dearest(cells: Path, keys: dict[str, str]) -> Dearest:
    """The lowest req/s among the closed-loop windows under `cells` (folder name:
    configuration) that ended ok and answered at least 99 % of their requests."""
    windows: dict[str, float] = {}
    for name in keys:
        folder = cells / name
        if not (folder / "cell.json").exists():
            continue
        record = load_json(folder / "cell.json", CELL)
        if record.get("status") != "ok":
            continue
        requests, failed, seconds = window_counts(folder, record)
        if requests and failed <= 0.01 * requests and seconds > 0:
            windows[name] = requests / seconds
    if not windows:
        raise CalibrationFailed(f"no closed-loop window of the first round ended ok, so a "
                                f"share of the {DEAREST} has nothing to be a share of")
    name = min(windows, key=windows.__getitem__)
    return Dearest(keys[name], windows[name], windows)


def recorded_dearest(recorded: dict[str, Any]) -> Dearest:
    """A run's metadata.json "dearest", as measure_dearest gave it (a resumed run)."""
    return Dearest(recorded["key"], float(recorded["rps"]), dict(recorded["windows"]))


@dataclass
class DearestRate:
    """What "N%dearest" rates are a share of, read once the first round's closed-loop
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
                    measure_dearest(self.run.cells, self.windows)
            except CalibrationFailed as exc:
                self.run.update_metadata(dearest_failed=str(exc))
                self.value = str(exc)
                progress.note(f"{exc}; the cells offering a share of it fail")
                return self.value
            self.run.update_metadata(dearest=self.value.as_dict())
            progress.note(f"the dearest: {self.value.key} served {self.value.rps:,.0f} req/s "
                          f"closed loop in the first round; {cell.rate} = "
                          f"{cell.offered_rate(None, self.value.rps):,.0f} req/s")
        return self.value

