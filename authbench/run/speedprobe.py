"""The machine's speed, measured: a fixed CPU workload on each core, timed.

A run's absolute figures (CPU µs per request, req/s, latency) follow the machine's speed
that hour as much as the code: on a shared host the same code cost 108 µs per request in
one run and 163 µs in the next, with no steal time and no other process busy. The probe
runs the same work every time (HMAC-SHA256 over a fixed message and a JSON round trip of
a fixed small dict, ITERATIONS times: about 20 ms on the machine it was calibrated on)
pinned to each CPU in turn, PASSES passes per CPU, and keeps the best pass's CPU time
per iteration (the thread's own CPU clock): the lower, the faster the machine. CPU
time, because a run's costs are CPU time: it moves with what the machine does per
instruction that hour (frequency, the host's neighbours), not with another program
taking turns on the core. The best pass's wall time is kept beside it: wall well above
CPU time says something else ran on that core meanwhile (a busy loop pinned to the
probed core doubles it and leaves the CPU time where it was).

The probe runs in a process of its own (`python -m authbench.run.speedprobe`), started
for each probe: inside the runner it would wait for the GIL behind the runner's own
threads (between rounds of a quick run, 1 % of a core and 10-17 s per probe instead of
0.3 s). `SpeedLog` appends labelled probes ("start", "round 2", "end") to
<run>/speed.json; analysis.cost.speed reads it.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.data.formats import SPEED, load_json

# Calibrated once (not per run, or the probe would measure nothing): 3,000 iterations took
# 19.4-20.5 ms of CPU per pass on the 2-core KVM Xeon this project was developed on.
ITERATIONS = 3_000
PASSES = 3  # best of: a pass the scheduler interrupted says little about the core
SPEED_FILE = "speed.json"
TIMEOUT_S = 120.0  # a probe that takes this long (of ~0.2 s) is recorded as failed

_KEY = b"authbench speed probe: fixed key"
_MESSAGE = b'{"sub":"user-000042","sid":"f3a1c9e2b7d04a55","iat":1700000000,"exp":1700000900}'
_DOC: dict[str, Any] = {"sub": "user-000042", "roles": ["reader", "writer"],
                        "iat": 1_700_000_000, "exp": 1_700_000_900,
                        "sid": "f3a1c9e2b7d04a55", "n": 42}


class SpeedProbeFailed(RuntimeError):
    """The probe's process failed or did not finish."""


def workload(iterations: int = ITERATIONS) -> str:
    """The fixed work: what an auth step does, minus I/O. Returns the last MAC (so the
    work cannot be skipped)."""
    mac = ""
    for _ in range(iterations):
        mac = hmac.new(_KEY, _MESSAGE, hashlib.sha256).hexdigest()
        json.loads(json.dumps(_DOC))
    return mac


def _timed_pass(iterations: int) -> tuple[int, int]:
    """One pass: (wall ns, this thread's CPU ns)."""
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    workload(iterations)
    return time.perf_counter_ns() - wall, time.thread_time_ns() - cpu


def probe_cpu(cpu: int, iterations: int = ITERATIONS, passes: int = PASSES) -> dict[str, Any]:
    """passes passes with the calling thread pinned to cpu (put back after): the best
    pass's CPU and wall ns per iteration, and every pass's."""
    before = os.sched_getaffinity(0)
    was_collecting = gc.isenabled()
    try:
        os.sched_setaffinity(0, {cpu})
        gc.disable()  # a collection in one pass and not the next is not the machine
        timed = [_timed_pass(iterations) for _ in range(passes)]
    finally:
        if was_collecting:
            gc.enable()
        os.sched_setaffinity(0, before)
    walls = [wall / iterations for wall, _ in timed]
    cpus = [cpu / iterations for _, cpu in timed]
    return {"cpu_ns_per_iteration": min(cpus), "ns_per_iteration": min(walls),
            "passes_cpu_ns_per_iteration": cpus, "passes_ns_per_iteration": walls}


def probe_speed(cpus: Sequence[int], iterations: int = ITERATIONS,
                passes: int = PASSES) -> dict[str, Any]:
    """The workload on each of cpus in turn, in a process of its own: per CPU (by its
    number, as a string) probe_cpu's figures; when it ran, how long the whole probe took
    (the process's start included) and how long the passes themselves took."""
    if not cpus:
        raise ValueError("probe_speed needs at least one CPU")
    at, wall_clock, started = _now_iso(), time.time(), time.perf_counter()
    command = [sys.executable, "-m", "authbench.run.speedprobe",
               ",".join(str(cpu) for cpu in sorted(set(cpus))), str(iterations), str(passes)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise SpeedProbeFailed(f"the speed probe took over {TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SpeedProbeFailed(f"the speed probe exited with {done.returncode}: {last}")
    per_cpu: dict[str, Any] = json.loads(done.stdout)
    passes_s = sum(sum(c["passes_ns_per_iteration"]) for c in per_cpu.values()) \
        * iterations / 1e9
    return {"at": at, "time": wall_clock, "iterations": iterations, "passes": passes,
            "cpus": per_cpu, "seconds": time.perf_counter() - started, "passes_seconds": passes_s}


def _now_iso() -> str:
    # authbench.run.rundir's now_iso, without importing rundir here: the probe's process
    # imports this module, and rundir brings psutil and cryptography (a second under load).
    return datetime.now(UTC).isoformat(timespec="seconds")


class SpeedLog:
    """Labelled probes of one run, appended to <run folder>/speed.json (rewritten
    atomically each time). A resumed run appends to the file its first part wrote."""

    def __init__(self, folder: Path, cpus: Sequence[int]) -> None:
        self.path = folder / SPEED_FILE
        self.cpus = tuple(sorted(set(cpus)))
        self.probes: list[dict[str, Any]] = []
        self._round: int | None = None  # the round (repeat) of the last window, once one ran
        if self.path.exists():
            self.probes = list(load_json(self.path, SPEED).get("probes", []))

    def probe(self, label: str) -> dict[str, Any]:
        """Probe every CPU now, record it under label, and return the probe. A failed
        probe is recorded with its error, not raised: the run's windows matter more."""
        from authbench.run.rundir import write_json  # see _now_iso

        try:
            measured = {"label": label, **probe_speed(self.cpus)}
        except (SpeedProbeFailed, OSError) as exc:
            measured = {"label": label, "at": _now_iso(), "error": str(exc)}
        self.probes.append(measured)
        write_json(self.path, {"format": SPEED.current, "workload": describe(),
                               "probes": self.probes})
        return measured

    def at_round(self, repeat: int, window: str = "") -> None:
        """Called before each window (window: its name in the plan, "007-..."): probe when
        the window's round (repeat) differs from the last one's, not before the first (the
        run's start probe was just taken). The label names the round and the window it
        precedes, since a share of the dearest runs a round late and rounds alternate."""
        if self._round is not None and repeat != self._round:
            number = window.split("-", 1)[0].lstrip("0")
            self.probe(f"round {repeat}" + (f", before window {number}" if number else ""))
        self._round = repeat


def describe() -> dict[str, Any]:
    """What the probe ran, for the file's reader."""
    return {"iterations": ITERATIONS, "passes": PASSES,
            "work": "HMAC-SHA256 over a fixed 80-byte message, then json.dumps and json.loads "
                    "of a fixed 6-key dict, per iteration, pinned to each CPU in turn, in a "
                    "process of its own",
            "figure": "cpu_ns_per_iteration: the best pass's thread CPU time per iteration "
                      "(ns_per_iteration: the best pass's wall time)"}


def main(argv: Sequence[str] | None = None) -> None:
    """The probe's process: CPUS ITERATIONS PASSES in, per-CPU figures as JSON out."""
    parser = argparse.ArgumentParser(prog="python -m authbench.run.speedprobe")
    parser.add_argument("cpus", help="comma-separated CPU numbers")
    parser.add_argument("iterations", type=int)
    parser.add_argument("passes", type=int)
    args = parser.parse_args(argv)
    cpus = [int(cpu) for cpu in args.cpus.split(",")]
    print(json.dumps({str(cpu): probe_cpu(cpu, args.iterations, args.passes) for cpu in cpus}))


if __name__ == "__main__":
    main()
