"""Open-model load against a target whose timing is known: real uvicorn, real Locust.

The paced target (tests/loadtests/paced_target.py) either stops its event loop now and
then or holds it with busy CPU for a fixed time per request, so what the generator
must see is known before it runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from analysis.data.hdr import load_cell_histograms
from analysis.latency.curve import knee
from authbench.infra.launcher import stop_process
from authbench.infra.ports import LOOPBACK, free_port
from authbench.run.cell import Cell
from authbench.run.locustrun import LocustProcesses
from authbench.run.placement import plan_placement
from tests.support import wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
FLOOR = "GET /noauth"
# As the runner places them: the target on its own CPU(s), Locust on the others.
PLACEMENT = plan_placement(True)


@pytest.fixture
def paced_target(tmp_path: Path) -> Iterator[Any]:
    """Start the paced target (one uvicorn process) with the given timing; stop it after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**timing: float) -> str:
        port = free_port()
        env = {**os.environ, **{f"PACED_{k.upper()}": str(v) for k, v in timing.items()}}
        with (tmp_path / f"paced-{port}.log").open("wb") as log:  # the child keeps its own
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "tests.loadtests.paced_target:app",
                 "--host", LOOPBACK, "--port", str(port), "--no-access-log"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        PLACEMENT.pin_target(process.pid)
        url = f"http://{LOOPBACK}:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/noauth", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, 20, "the paced target")
        return url

    yield start
    for process in started:
        stop_process(process)


def drive(url: str, folder: Path, users: int,
          windows: list[tuple[float, float, float]]) -> list[dict[str, Any]]:
    """Run Locust's floor scenario through (rate, warmup, seconds) windows; a summary each."""
    cell = Cell(mode="none", scenario="floor", users=users, duration=1, warmup=0)
    locust = LocustProcesses(cell, url, folder, run_time=120 + sum(w + s for _, w, s in windows),
                             on_spawn=PLACEMENT.pin_generator)
    summaries = []
    try:
        locust.start()
        locust.wait_ready(60)
        for number, (rate, warmup, seconds) in enumerate(windows):
            window_folder = folder / f"window-{number}"
            window = locust.announce(window_folder, warmup, seconds, rate)
            files = locust.collect(window)
            assert files, locust.log_tail()
            histograms, failures = load_cell_histograms(window_folder)
            latency = histograms[FLOOR]
            body = json.loads(files[0].read_text())
            summaries.append({
                "rate": rate,
                "achieved": latency.get_total_count() / seconds,
                "p99_ms": latency.get_value_at_percentile(99) / 1000,
                "service_p99_ms": (histograms[f"service {FLOOR}"].get_value_at_percentile(99)
                                   / 1000 if rate else None),
                "failures": sum(failures.values()),
                "open": body.get("open"),
            })
    finally:
        outcome = locust.stop()
    assert outcome.exit_code == 0, outcome.log_tail
    return summaries


def test_a_stall_shows_in_the_corrected_latency_and_hides_from_the_closed_loop(
    paced_target: Any, tmp_path: Path
) -> None:
    url = paced_target(stall_every=5, stall_for=0.5)
    open_model = drive(url, tmp_path / "open", users=20, windows=[(100, 0.5, 20)])[0]
    # Two stalls are enough for the closed loop: what it shows does not grow with time.
    closed = drive(url, tmp_path / "closed", users=20, windows=[(0, 0.5, 10)])[0]
    figures = (f"open model at 100 req/s: corrected p99 {open_model['p99_ms']:.0f} ms, "
               f"service p99 {open_model['service_p99_ms']:.0f} ms; closed loop: p99 "
               f"{closed['p99_ms']:.1f} ms at {closed['achieved']:.0f} req/s")
    print(figures)  # pytest -s shows them
    # Four stalls of 500 ms in 20 s hold up 4 x 50 of the 2,000 arrivals: the slowest 1 %
    # all waited through most of a stall.
    assert open_model["p99_ms"] >= 300, figures
    # A closed loop stops sending while the target stalls: 20 users' requests wait per
    # stall, out of tens of thousands sent the rest of the time.
    assert closed["p99_ms"] < open_model["p99_ms"] / 5, figures
    assert open_model["open"]["scheduled"] == 2000, open_model
    assert open_model["open"]["sent"] >= 0.98 * 2000, open_model
    assert open_model["failures"] == 0 and closed["failures"] == 0


def test_the_knee_of_a_single_busy_worker_is_where_its_service_time_predicts(
    paced_target: Any, tmp_path: Path
) -> None:
    url = paced_target(busy_ms=2)  # 2 ms of CPU per request in one process: 500 req/s
    rates = [200, 300, 400, 450, 500, 550, 650]
    points = drive(url, tmp_path, users=40, windows=[(r, 0.5, 2.0) for r in rates])
    found = knee([(p["rate"], p["p99_ms"], p["achieved"]) for p in points])
    figures = "; ".join(f"{p['rate']}/s: p99 {p['p99_ms']:.1f} ms, achieved "
                        f"{p['achieved']:.0f}/s" for p in points)
    print(f"knee at {found} req/s: {figures}")  # pytest -s shows them
    assert found is not None, figures
    assert 400 <= found <= 600, f"knee at {found} req/s, predicted 500: {figures}"
