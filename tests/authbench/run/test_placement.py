"""CPU placement: the split between targets and generator, and pinning a live process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from authbench.run.placement import pin, plan_placement


def test_the_split_gives_targets_the_first_half_rounded_up() -> None:
    two = plan_placement(True, (0, 1))
    assert two.is_pinned and two.target_cpus == (0,) and two.generator_cpus == (1,)
    three = plan_placement(True, (0, 1, 2))
    assert three.target_cpus == (0, 1) and three.generator_cpus == (2,)
    assert plan_placement(True, (4, 5, 6, 7)).describe() == {
        "is_pinned": True, "target_cpus": [4, 5], "generator_cpus": [6, 7]}


def test_no_pinning_when_asked_or_on_one_cpu() -> None:
    for placement in (plan_placement(False, (0, 1)), plan_placement(True, (3,))):
        assert not placement.is_pinned
        assert placement.target_cpus == placement.generator_cpus


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin apart")
def test_pin_moves_every_thread_of_a_running_process(tmp_path: Path) -> None:
    # A child with a second thread already running when it is pinned.
    script = ("import threading, time\n"
              "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
              "print('ready', flush=True)\n"
              "time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        cpu = sorted(os.sched_getaffinity(0))[-1]
        placement = plan_placement(True)
        pin(child.pid, (cpu,))
        threads = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        assert len(threads) == 2
        assert all(os.sched_getaffinity(tid) == {cpu} for tid in threads)
        placement.pin_target(child.pid)
        assert os.sched_getaffinity(child.pid) == set(placement.target_cpus)
    finally:
        child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
