"""Where processes run: targets and the load generator on disjoint CPU sets.

On one machine Locust and the targets compete for the same cores, and the
scheduler decides who wins: req/s then measures the scheduler. Pinning gives the
targets the first half of the CPUs this process may use (rounded up) and the load
generator, with the runner itself, the rest: on 2 cores, target on one and Locust
on the other. Stores the runner did not start (Redis, PostgreSQL) are left where
the system puts them; their CPU is measured, not placed.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Placement:
    """The CPU sets of the targets and of the load generator (equal when not pinned)."""

    is_pinned: bool
    target_cpus: tuple[int, ...]
    generator_cpus: tuple[int, ...]

    def describe(self) -> dict[str, Any]:
        """What metadata.json and cell.json keep."""
        return {"is_pinned": self.is_pinned, "target_cpus": list(self.target_cpus),
                "generator_cpus": list(self.generator_cpus)}

    def pin_target(self, pid: int) -> None:
        if self.is_pinned:
            pin(pid, self.target_cpus)

    def pin_generator(self, pid: int) -> None:
        if self.is_pinned:
            pin(pid, self.generator_cpus)


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on."""
    return tuple(sorted(os.sched_getaffinity(0)))


def plan_placement(is_wanted: bool, cpus: tuple[int, ...] | None = None) -> Placement:
    """Split the CPUs between targets and generator; unpinned when asked or when only one."""
    cpus = cpus if cpus is not None else available_cpus()
    if not is_wanted or len(cpus) < 2:
        return Placement(False, cpus, cpus)
    half = math.ceil(len(cpus) / 2)
    return Placement(True, cpus[:half], cpus[half:])


def pin(pid: int, cpus: tuple[int, ...]) -> None:
    """Pin every thread of a running process (new threads inherit from their creator)."""
    try:
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for tid in threads:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)
