"""A Locust worker lost mid-run: its cell is short and names it; --resume measures it again."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import psutil
import pytest

from authbench.run.rundir import RunDir
from authbench.run.runner import RunOptions, run_suite
from authbench.run.suite import SERVICES, load_suite
from tests.support import read_json, wait_for

SUITE = """name = "loss"
[defaults]
scenario = "floor"
users = 2
workers = 2
duration = 2
warmup = 0

[[matrix]]
mode = "none"
"""
CELL = "001-none-floor-u2-n1-w2-r1"


def locust_workers() -> list[psutil.Process]:
    """This test process's Locust workers."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "--worker" in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow  # a real suite run, and its resume
def test_a_worker_killed_mid_window_makes_its_cell_short_and_resume_measures_it(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    suite_path = tmp_path / "loss.toml"
    suite_path.write_text(SUITE)
    killed: list[int] = []
    problems: list[str] = []

    def kill_a_worker() -> None:
        try:
            wait_for(lambda: any(results.glob(f"*/cells/.{CELL}.partial/control.json")), 60,
                     "the cell's measured window")
            time.sleep(1.0)  # into the measured span
            workers = locust_workers()
            assert len(workers) == 2, [w.cmdline() for w in workers]
            workers[0].kill()
            killed.append(workers[0].pid)
        except Exception as exc:
            problems.append(repr(exc))

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    run = run_suite(load_suite(str(suite_path), SERVICES),
                    RunOptions(results=results, out=io.StringIO(), pin=False))
    killer.join(10)
    assert not problems, problems
    short = read_json(run.path / "cells" / CELL / "cell.json")
    assert short["status"] == "short"
    assert short["reason"].startswith("short window 1: worker ") and \
        f"pid {killed[0]} " in short["reason"]
    [missing] = short["window"]["missing_workers"]
    assert missing["pid"] == killed[0] and "dead or late" in missing["why"]
    # The other worker's histograms are kept, beside the master's account of the window.
    kept = sorted(p.name for p in (run.path / "cells" / CELL).glob("hdr-*.json"))
    assert len(kept) == 1 and str(killed[0]) not in kept[0]
    assert read_json(run.path / "cells" / CELL / "workers-1.json")["missing"] == [missing]
    assert RunDir.open(run.path).finished_cells() == set()  # --resume measures it again

    again = run_suite(load_suite(str(suite_path), SERVICES),
                      RunOptions(results=results, out=io.StringIO(), pin=False),
                      resume=RunDir.open(run.path))
    record = read_json(again.path / "cells" / CELL / "cell.json")
    assert record["status"] == "ok", record["reason"]
    assert len(list((again.path / "cells" / CELL).glob("hdr-*.json"))) == 2
    assert read_json(again.path / "short" / f"{CELL}.1" / "cell.json") == short
    assert read_json(again.path / "metadata.json")["status"] == "complete"
