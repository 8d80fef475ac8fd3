"""The floor's capacity, measured at the start of a run, so rates can be shares of it.

A suite may give open-model rates as shares of the floor ("50%"): the requests per
second that the no-auth target served in a short closed-loop window on this machine,
with the same scenario, users and nodes as the cells that use the shares. The run
records the figure (metadata.json "calibration") and each cell its absolute rate, so
the shares mean something on any machine and the run says what they meant on this one.
A resumed run reuses its recorded figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.hdr import is_timing, load_cell_histograms
from authbench.run.cell import Cell
from authbench.run.rig import CellFailed, Rig

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
    histograms, failures = load_cell_histograms(folder)
    requests = sum(int(h.get_total_count()) for name, h in histograms.items()
                   if not is_timing(name))
    window = record["window"]
    seconds = window["measure_until"] - window["measure_from"]
    failed = sum(failures.values())
    if not requests or failed > 0.01 * requests:
        raise CalibrationFailed(f"the floor answered {requests} requests and failed {failed} "
                                f"in {seconds:.1f} s")
    return Calibration(rig.cell, requests, seconds)
