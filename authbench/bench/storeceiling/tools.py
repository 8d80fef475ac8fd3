"""The benchmark tools: found or refused in one line, run pinned, their own CPU counted."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

# Debian/Ubuntu packages, named in the one line a missing tool gets.
PACKAGES = {"redis-benchmark": "redis-tools", "redis-server": "redis-server",
            "pgbench": "postgresql-client"}
STORE_TOOLS = {"redis": ("redis-server", "redis-benchmark"), "postgres": ("pgbench",)}
SATURATED = 0.9  # a CPU busy this share of the time is what ran out
DISTURBED = 0.15  # other processes' share of the store's or client's CPUs that marks a repeat
DISTURBED_NOTE = "; other work shared its CPUs"


class ToolMissing(RuntimeError):
    """A benchmark tool the store's measurement needs is not installed."""


def missing_tools(store: str) -> list[str]:
    """The tools measuring `store` needs that are not on PATH."""
    return [tool for tool in STORE_TOOLS[store] if shutil.which(tool) is None]


def require_tools(stores: tuple[str, ...]) -> None:
    """ToolMissing, naming the tools and their packages, unless every one is installed."""
    missing = [tool for store in stores for tool in missing_tools(store)]
    if missing:
        packages = sorted({PACKAGES[tool] for tool in missing})
        raise ToolMissing(f"{', '.join(missing)} not installed (Debian/Ubuntu: apt-get "
                          f"install {' '.join(packages)})")


def tool_version(tool: str) -> str:
    """What `tool --version` prints (its first line), or 'unknown'."""
    try:
        done = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


@dataclass(frozen=True)
class CpuPlan:
    """The store's CPU and the benchmark client's (equal when there is only one CPU)."""

    store_cpus: tuple[int, ...]
    client_cpus: tuple[int, ...]

    @property
    def is_pinned(self) -> bool:
        return not set(self.store_cpus) & set(self.client_cpus)


def plan_cpus() -> CpuPlan:
    """The first CPU this process may use for the store, the rest for the client."""
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    if len(cpus) < 2:
        return CpuPlan(cpus, cpus)
    return CpuPlan(cpus[:1], cpus[1:])


@dataclass(frozen=True)
class Finished:
    """A tool's run: its output, exit code, wall seconds and the CPU seconds it used."""

    stdout: str
    stderr: str
    returncode: int
    wall_s: float
    cpu_s: float


def run_pinned(command: list[str], cpus: tuple[int, ...], env: dict[str, str] | None = None,
               on_start: Callable[[int], None] | None = None) -> Finished:
    """Run command on cpus to its end; its CPU from the kernel's own count (wait4).

    on_start is called with the child's pid once it runs (to watch it), before the wait.
    Output goes to files, not pipes: nothing can block on a full pipe while we wait.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=env, preexec_fn=lambda: os.sched_setaffinity(0, cpus))
        try:
            if on_start is not None:
                on_start(process.pid)
        except BaseException:
            process.kill()
            process.wait()
            raise
        # wait4, not Popen.wait: it also gives the child's own CPU (user + system).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Finished(out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                        process.returncode, wall, usage.ru_utime + usage.ru_stime)


def process_cpu_s(pid: int) -> float:
    """A process's CPU seconds so far: /proc/<pid>/schedstat (nanoseconds) where the kernel
    has it, else psutil's user + system (clock ticks: 10 ms steps, too coarse to sum over
    many short-lived backends)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)


def cpu_busy() -> list[tuple[float, float]]:
    """Per CPU: (busy seconds, total seconds) so far; two readings give each one's share."""
    found = []
    for times in psutil.cpu_times(percpu=True):
        idle = times.idle + getattr(times, "iowait", 0.0)
        total = sum(times)
        found.append((total - idle, total))
    return found


def busy_shares(before: list[tuple[float, float]], after: list[tuple[float, float]]
                ) -> list[float]:
    """Each CPU's busy share between two cpu_busy() readings."""
    shares = []
    for (busy0, total0), (busy1, total1) in zip(before, after, strict=True):
        elapsed = total1 - total0
        shares.append(round((busy1 - busy0) / elapsed, 3) if elapsed > 0 else 0.0)
    return shares


def disturbance(busy: list[float], plan: CpuPlan, store_share: float | None,
                client_share: float, is_pinned: bool) -> dict[str, Any]:
    """What other processes took of the store's and the client's CPUs (busy minus own).

    The machine may be shared: a repeat in which others took DISTURBED of either side's
    CPUs is marked, since its throughput says as much about them as about the store.
    """
    def other(cpus: tuple[int, ...], own: float | None) -> float | None:
        if not is_pinned or own is None or not cpus:
            return None
        return round(max(0.0, sum(busy[cpu] for cpu in cpus) / len(cpus) - own), 3)

    store, client = other(plan.store_cpus, store_share), other(plan.client_cpus, client_share)
    return {"other_load": {"store_cpus": store, "client_cpus": client},
            "is_disturbed": any(v is not None and v >= DISTURBED for v in (store, client))}


def limited_by(store_share: float | None, client_share: float | None) -> str:
    """What ran out: 'store', 'client', 'store and client', or 'neither' (round trips)."""
    store = store_share is not None and store_share >= SATURATED
    client = client_share is not None and client_share >= SATURATED
    if store and client:
        return "store and client"
    if store:
        return "store"
    if client:
        return "client"
    return "neither" if store_share is not None else "unknown (store CPU not measured)"
