"""The suite runner: the cells of a suite, each measured by a rig, into one run folder.

Two ways to run (the suite's `interleave`):
- "cells": each cell (configuration x repeat) gets a rig of its own: start, load
  phase, one measured window, stop;
- "windows": every configuration's rig comes up once (one login storm for the whole
  run), then short measured windows rotate over the configurations, repeat after
  repeat, so slow drift of the machine falls on every configuration alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from adapters.loading import AdapterFile
from authbench.infra.haproxy import haproxy_path
from authbench.infra.ports import LOOPBACK
from authbench.run.apirig import ApiRig
from authbench.run.apisuite import api_metadata, variant_adapter
from authbench.run.calibration import (
    BASIS_ROUNDS,
    MEASURED_SECONDS,
    WARMUP_SECONDS,
    Calibration,
    CalibrationFailed,
    Dearest,
    DearestRate,
    dearest_windows,
    floor_cell,
    is_floor_rig,
    measure_floor,
)
from authbench.run.cell import Cell
from authbench.run.extras import SuiteExtra
from authbench.run.locustrun import ready_timeout, short_reason
from authbench.run.placement import Placement, plan_placement
from authbench.run.progress import Progress
from authbench.run.rig import CellFailed, Rig
from authbench.run.rundir import RunDir, cell_folder_name, now_iso
from authbench.run.speedprobe import SpeedLog
from authbench.run.suite import WINDOWED_SCENARIOS, Suite
from targets.settings import DEFAULT_STORE_URLS


@dataclass
class RunOptions:
    """How to run a suite (not what: that is the suite)."""

    results: Path = Path("results")
    redis_url: str = DEFAULT_STORE_URLS["redis"]
    postgres_url: str = DEFAULT_STORE_URLS["postgres"]
    external_workers: int = 0
    master_bind_host: str = LOOPBACK
    master_bind_port: int = 5557  # fixed, so workers started elsewhere can find the master
    use_haproxy: bool = True
    pin: bool = True  # targets and load generator on disjoint CPUs (authbench.run.placement)
    out: TextIO | None = None
    notes: list[str] = field(default_factory=list)
    extras: Mapping[str, SuiteExtra] = field(default_factory=dict)  # by the suite's names
    api: AdapterFile | None = None  # the API the suite drives (--api), not the twins

    def store_url(self, store: str) -> str:
        return self.redis_url if store == "redis" else self.postgres_url


RECORDED_OPTIONS = ("redis_url", "postgres_url", "external_workers", "master_bind_host",
                    "master_bind_port", "use_haproxy", "pin")


def recorded_options(options: RunOptions) -> dict[str, Any]:
    """The options a resumed run must reuse, as metadata.json keeps them."""
    return {name: getattr(options, name) for name in RECORDED_OPTIONS}


def restore_options(options: RunOptions, recorded: dict[str, Any]) -> list[str]:
    """Put a run's recorded options back; return a line per value that differed."""
    changed = []
    for name in RECORDED_OPTIONS:
        if name in recorded and getattr(options, name) != recorded[name]:
            changed.append(f"{name}: using the run's {recorded[name]!r}, "
                           f"not {getattr(options, name)!r}")
            setattr(options, name, recorded[name])
    return changed


def plan(suite: Suite) -> list[tuple[str, Cell, int]]:
    """(folder name, cell, repeat) in run order: repeats interleaved, cell by cell. In a
    windows suite, a cell that cannot wait between windows (an API's revocation probe)
    runs once, on a rig of its own, after the windows. A rate that is a share of the
    dearest runs a round late, after the closed-loop windows that set it
    (calibration.BASIS_ROUNDS)."""
    order: list[tuple[str, Cell, int]] = []
    windowed = [c for c in suite.cells
                if suite.interleave != "windows" or c.scenario in WINDOWED_SCENARIOS]
    shared = [c for c in windowed if c.dearest_fraction is not None]
    lag = min(BASIS_ROUNDS, suite.repeats) - 1 if shared else 0
    for step in range(1, suite.repeats + lag + 1):
        due = [(c, step) for c in windowed if c not in shared and step <= suite.repeats]
        due += [(c, step - lag) for c in shared if step - lag >= 1]
        for cell, repeat in due:
            order.append((cell_folder_name(len(order) + 1, cell, repeat), cell, repeat))
    for cell in suite.cells:
        if cell not in windowed:
            order.append((cell_folder_name(len(order) + 1, cell, 1), cell, 1))
    return order


def cell_seconds(cell: Cell, interleave: str = "cells") -> float:
    """A rough wall-clock estimate of one cell, for the time-left figure."""
    if interleave == "windows":
        return cell.warmup + cell.duration + 0.5
    return (cell.warmup + cell.duration + 6 + 2 * cell.nodes + cell.scale / 50_000
            + cell.users * 0.2)


def _record(name: str, cell: Cell) -> dict[str, Any]:
    return {"name": name, "cell": cell.as_dict(), "started": now_iso(), "status": "failed",
            "reason": ""}


def _finish(run: RunDir, folder: Path, name: str, record: dict[str, Any]) -> dict[str, Any]:
    record["ended"] = now_iso()
    final = run.cells / name
    command = record.get("locust", {}).get("command")
    if command:  # the command ran in the scratch folder: name the final one
        record["locust"]["command"] = [part.replace(str(folder), str(final)) for part in command]
    run.finish_cell(folder, name, record)
    return record


def _measure(rig: Rig, folder: Path, cell: Cell, record: dict[str, Any],
             floor: Calibration | str | None, dearest: Dearest | str | None = None) -> None:
    """One window of rig into folder; the cell's status and reason into record.

    floor, dearest: what shares are of, or why it could not be had (None: not needed)."""
    capacity = floor.capacity_rps if isinstance(floor, Calibration) else None
    basis = dearest if isinstance(dearest, Dearest) else None
    try:
        if cell.rate_fraction is not None and capacity is None:
            raise CellFailed(f"rate {cell.rate} is a share of the floor's capacity, which was "
                             f"not measured: {floor}")
        if cell.dearest_fraction is not None and basis is None:
            raise CellFailed(f"rate {cell.rate} is a share of the dearest configuration's "
                             f"closed-loop req/s, which was not measured: {dearest}")
        offered = cell.offered_rate(capacity, basis.rps if basis else None)
        if cell.rate:
            record["rate"] = {"spec": cell.rate, "offered": offered, "floor_capacity": capacity,
                              **({"dearest": basis.as_dict()} if basis else {})}
        record.update(rig.measure(folder, cell.warmup, cell.duration, offered))
        record["status"] = "ok"
        if record["window"].get("is_short"):  # a worker's data never came: measured again
            record["status"] = "short"  # by --resume (RunDir.finished_cells)
            record["reason"] = short_reason(record["window"]["seq"],
                                            record["window"]["missing_workers"])
    except CellFailed as exc:
        record.update({k: v for k, v in rig.facts.items() if k not in record})
        record["reason"] = str(exc)


def _make_rig(run: RunDir, index: int, cell: Cell, options: RunOptions, placement: Placement,
              folder: Path, run_time: float) -> Rig:
    if cell.api:
        if options.api is None:
            raise ValueError(f"{cell.key} drives an API, and the runner was given no adapter")
        return ApiRig(cell, variant_adapter(options.api, cell), folder, placement, run_time,
                      external_workers=options.external_workers,
                      master_bind_host=options.master_bind_host,
                      master_bind_port=options.master_bind_port)
    return Rig(run, index, cell, options.store_url(cell.store), folder, placement, run_time,
               use_haproxy=options.use_haproxy, external_workers=options.external_workers,
               master_bind_host=options.master_bind_host,
               master_bind_port=options.master_bind_port)


def calibrate(run: RunDir, cells: Iterable[Cell], options: RunOptions, placement: Placement,
              progress: Progress, rigs: Iterable[Rig] = ()) -> Calibration | str | None:
    """The floor's capacity when a cell offers a share of it (a rig of `rigs` that runs
    the floor as it is, else one of its own); why not, as text, when it cannot be had."""
    floor = floor_cell(cells)
    if floor is None:
        return None
    recorded = run.metadata().get("calibration")
    if recorded:
        progress.note(f"calibration: the run's recorded floor, {recorded['capacity_rps']:,.0f} "
                      "req/s")
        return Calibration(floor, recorded["requests"], recorded["seconds"])
    rig = next((r for r in rigs if r.failure is None and is_floor_rig(r, floor)), None)
    own = rig is None
    if rig is None:  # (mypy narrows on this test, not on `own`)
        rig = _make_rig(run, 0, floor, options, placement, run.path / "rigs" / "calibration",
                        ready_timeout(floor) + WARMUP_SECONDS + MEASURED_SECONDS + 60)
        rig.folder.mkdir(parents=True, exist_ok=True)
        rig.up(progress.note)
        rig.settle()
    progress.note(f"calibration: the floor ({floor.key}), closed loop, "
                  f"{WARMUP_SECONDS:g} s + {MEASURED_SECONDS:g} s")
    try:
        calibration = measure_floor(rig, run.path)
    except CalibrationFailed as exc:
        run.update_metadata(calibration_failed=str(exc))
        progress.note(f"calibration failed: {exc}; the cells offering a share of it fail")
        return str(exc)
    finally:
        if own:
            rig.down()
    run.update_metadata(calibration=calibration.as_dict())
    shares = {c.rate: c.offered_rate(calibration.capacity_rps) for c in cells
              if c.rate_fraction is not None}
    progress.note(f"calibration: the floor served {calibration.capacity_rps:,.0f} req/s; "
                  + ", ".join(f"{share} = {rps:,.0f}" for share, rps in
                              sorted(shares.items(), key=lambda item: item[1])) + " req/s")
    return calibration


def run_cell(run: RunDir, index: int, name: str, cell: Cell, options: RunOptions,
             placement: Placement, progress: Progress,
             floor: Calibration | str | None = None,
             dearest: Dearest | str | None = None) -> dict[str, Any]:
    """One cell with a rig of its own: up, one window, down; return its record."""
    folder = run.start_cell(name)
    record = _record(name, cell)
    run_time = ready_timeout(cell) + cell.warmup + cell.duration + 60
    rig = _make_rig(run, index, cell, options, placement, folder, run_time)
    try:
        rig.up(progress.note)
        rig.settle()
        progress.measuring(cell.warmup + cell.duration)
        try:
            _measure(rig, folder, cell, record, floor, dearest)
        finally:
            progress.measured()
    finally:
        ended = rig.down()
    if ended["locust"]:  # Locust ran (not for a cell that failed before it)
        record["locust"] = {**record.get("locust", {}), **ended["locust"]}
    if ended["warnings"]:
        record.setdefault("warnings", []).extend(ended["warnings"])
    if record["status"] == "ok" and ended["locust"].get("exit_code") not in (0, None):
        record["status"] = "failed"
        record["reason"] = f"locust exited with {ended['locust']['exit_code']}"
    return _finish(run, folder, name, record)


LOAD_PHASE_RIGS = 6  # configurations brought up at once in a windows suite (quick has 6)


def run_windows(run: RunDir, todo: list[tuple[int, tuple[str, Cell, int]]],
                options: RunOptions, placement: Placement, progress: Progress,
                dearest: DearestRate, speed: SpeedLog) -> None:
    """Every configuration up at once, logged in once; their windows interleaved."""
    first_index: dict[Cell, int] = {}  # a rig per configuration, whatever its rates
    for index, (_, cell, _) in todo:
        first_index.setdefault(cell.config, index)
    run_time = sum(c.warmup + c.duration + 2 for _, (_, c, _) in todo) + 300
    rigs = {config: _make_rig(run, index, config, options, placement,
                              run.path / "rigs" / config.key, run_time)
            for config, index in first_index.items()}
    for rig in rigs.values():
        rig.folder.mkdir(parents=True, exist_ok=True)
    progress.note(f"load phase: {len(rigs)} configurations start, are verified and log "
                  "their users in, once for the whole run")
    try:
        # A few at a time: logins are CPU-bound (the KDF), so more at once only stretches
        # each rig's own login deadline (offbox brings up 26 configurations).
        with ThreadPoolExecutor(max_workers=min(len(rigs), LOAD_PHASE_RIGS)) as pool:
            for future in [pool.submit(rig.up, progress.note) for rig in rigs.values()]:
                future.result()
        for rig in rigs.values():  # one at a time, on a machine no login keeps busy
            rig.settle()
            if rig.failure:
                progress.note(f"{rig.cell.key}: {rig.failure[:300]}")
        if placement.is_pinned:  # the runner's own sampling stays off the targets' CPUs
            os.sched_setaffinity(0, placement.generator_cpus)
        floor = calibrate(run, [c for _, (_, c, _) in todo], options, placement, progress,
                          rigs.values())
        for _index, (name, cell, repeat) in todo:
            speed.at_round(repeat, name)  # a new round: probe the machine's speed, rigs idle
            basis = dearest.of(cell, progress)
            progress.start_cell(name, cell_seconds(cell, "windows"))
            folder = run.start_cell(name)
            record = _record(name, cell)
            progress.measuring(cell.warmup + cell.duration)
            try:
                _measure(rigs[cell.config], folder, cell, record, floor, basis)
            finally:
                progress.measured()
            record["rig"] = str(rigs[cell.config].folder.relative_to(run.path))
            _finish(run, folder, name, record)
            progress.end_cell(record["status"], record.get("reason", ""))
    finally:
        os.sched_setaffinity(0, placement.target_cpus + placement.generator_cpus
                             if placement.is_pinned else placement.target_cpus)
        # All at once: a Locust that needs its stop signal repeated costs seconds each.
        with ThreadPoolExecutor(max_workers=len(rigs)) as pool:
            endings = list(pool.map(lambda rig: rig.down(), rigs.values()))
        for rig, ended in zip(rigs.values(), endings, strict=True):
            for warning in ended["warnings"]:
                progress.note(f"{rig.cell.key}: {warning}")


def run_extra(run: RunDir, name: str, options: RunOptions, progress: Progress) -> None:
    """A suite's extra measurement, once, into the run folder (kept when resumed)."""
    extra = options.extras.get(name)
    if extra is None:
        reason = "not given to this runner (RunOptions.extras)"
        progress.note(f"{name} failed: {reason}")
        run.update_metadata(extras_failed={name: reason})
        return
    if (run.path / extra.filename).exists():
        progress.note(f"{name}: already measured ({extra.filename})")
        return
    progress.note(f"{name}: {extra.description}")
    try:
        extra.measure(run.path, {"redis": options.redis_url, "postgres": options.postgres_url},
                      progress.note)
    except Exception as exc:  # the cells are measured: a failed extra is a note, not a crash
        progress.note(f"{name} failed: {type(exc).__name__}: {exc}")
        run.update_metadata(extras_failed={name: f"{type(exc).__name__}: {exc}"})
        return
    failed = run.metadata().get("extras_failed", {})
    if name in failed:  # measured now, on a resume: the earlier failure no longer holds
        run.update_metadata(extras_failed={k: v for k, v in failed.items() if k != name})


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, SIGHUP) during a run; carries the run folder so the CLI can say
    how to resume."""

    def __init__(self, run: RunDir) -> None:
        super().__init__(str(run.path))
        self.run = run


def run_suite(suite: Suite, options: RunOptions, resume: RunDir | None = None) -> RunDir:
    """Run every cell not yet finished; Ctrl-C keeps finished cells (resume later)."""
    order = plan(suite)
    placement = plan_placement(options.pin)
    if resume is None:
        run = RunDir.create(options.results, suite, {
            # An API's nodes are always spread over from the client side (ApiRig).
            "topology": {"load_balancer": "haproxy" if options.use_haproxy and haproxy_path()
                         and options.api is None else "client-side",
                         "external_workers": options.external_workers},
            "placement": placement.describe(),
            "interleave": suite.interleave,
            "notes": options.notes,
            "options": recorded_options(options),
            "target": "twins" if options.api is None else "external",
            **({} if options.api is None else {"api": api_metadata(options.api)}),
        })
        if options.api is not None:  # the adapter as it was, beside the suite
            (run.path / "api.toml").write_text(options.api.text)
    else:
        run = resume
        run.drop_partials()
        run.update_metadata(status="running", resumed=now_iso())
    done = run.finished_cells()
    todo = [(i, item) for i, item in enumerate(order, 1) if item[0] not in done]
    progress = Progress(len(order), len(done),
                        sum(cell_seconds(c, suite.interleave) for _, (_, c, _) in todo),
                        options.out)
    progress.note(f"run folder: {run.path}")
    dearest = DearestRate(run, dearest_windows(order))
    speed = SpeedLog(run.path, placement.target_cpus + placement.generator_cpus)
    speed.probe("start" if resume is None else "resumed")
    try:
        own_rig = todo
        if suite.interleave == "windows":
            windowed = [item for item in todo if item[1][1].scenario in WINDOWED_SCENARIOS]
            own_rig = [item for item in todo if item not in windowed]
            if windowed:
                run_windows(run, windowed, options, placement, progress, dearest, speed)
        if own_rig:
            floor = calibrate(run, [c for _, (_, c, _) in own_rig], options, placement,
                              progress)
            for index, (name, cell, repeat) in own_rig:
                speed.at_round(repeat, name)
                basis = dearest.of(cell, progress)
                progress.start_cell(name, cell_seconds(cell))
                record = run_cell(run, index, name, cell, options, placement, progress, floor,
                                  basis)
                progress.end_cell(record["status"], record.get("reason", ""))
        for extra in suite.extras:
            run_extra(run, extra, options, progress)
        speed.probe("end")
    except KeyboardInterrupt:
        run.drop_partials()
        run.update_metadata(status="interrupted", ended=now_iso())
        raise RunInterrupted(run) from None
    except Exception as exc:
        run.drop_partials()
        run.update_metadata(status="crashed", ended=now_iso(), error=f"{type(exc).__name__}: {exc}")
        raise
    run.update_metadata(status="complete", ended=now_iso())
    return run
