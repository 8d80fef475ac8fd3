"""Workers send their windows to the master over Locust's messages: real Locust processes
(a master, workers the runner starts and workers started as on another host), a real
target, loopback only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from authbench.infra.launcher import stop_process
from authbench.infra.ports import LOOPBACK, free_port
from authbench.run.cell import Cell
from authbench.run.locustrun import LocustProcesses, short_reason
from tests.conftest import StartTarget
from tests.support import wait_for

pytestmark = pytest.mark.slow  # real Locust processes against a real target
ROOT = Path(__file__).resolve().parents[2]
FLOOR = "GET /noauth"
SKEW_SECONDS = 3600.0
# Put in front of a worker's sys.path: its time.time() runs an hour ahead of this host's.
SKEWED_CLOCK = f"""import sys, time
_real = time.time
time.time = lambda: _real() + {SKEW_SECONDS}
print("clock skewed by {SKEW_SECONDS:g} s", file=sys.stderr, flush=True)
"""


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture
def workers_started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Workers a test starts as on another host; stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop_process(process)


def outside_worker(port: int, home: Path, extra_env: dict[str, str] | None = None
                   ) -> subprocess.Popen[bytes]:
    """`authbench worker` in a folder of its own, with none of the runner's environment."""
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHBENCH_")}
    env.update({"TMPDIR": str(home), "PYTHONPATH": str(ROOT), **(extra_env or {})})
    with (home.parent / f"{home.name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "authbench", "worker", "--master", f"{LOOPBACK}:{port}",
             "--wait", "60"], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)


def hdr_files(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.name: read_json(p) for p in sorted(folder.glob("hdr-*.json"))}


def floor_count(body: dict[str, Any], key: str = FLOOR) -> int:
    return int(HdrHistogram.decode(body["histograms"][key]).get_total_count())


def test_workers_here_and_elsewhere_send_their_windows_to_the_master(
        start_target: StartTarget, tmp_path: Path,
        workers_started: list[subprocess.Popen[bytes]]) -> None:
    target = start_target(AUTH_MODE="none")
    port = free_port()
    cell = Cell(mode="none", scenario="floor", users=4, workers=1, duration=1, warmup=0)
    locust = LocustProcesses(cell, target.url, tmp_path / "run", 120, external_workers=1,
                             master_bind_port=port)
    home = tmp_path / "elsewhere"
    try:
        locust.start()
        workers_started.append(outside_worker(port, home))
        locust.wait_ready(60)
        for seq in (1, 2):
            window = locust.announce(tmp_path / f"window-{seq}", 0.5, 2)
            files = locust.collect(window)
            assert locust.missing_workers(window, files) == []
            manifest = read_json(window.folder / f"workers-{seq}.json")
            assert manifest["missing"] == [] and manifest["expected"] == 2
            bodies = hdr_files(window.folder)
            # One file per worker, named by the worker's host and pid, as a local process
            # names its own: the runner's worker and the outside one.
            pids = {body["pid"] for body in bodies.values()}
            assert pids == {locust.workers[0].pid, workers_started[0].pid}
            assert set(bodies) == {f"hdr-{b['host']}-{b['pid']}.json" for b in bodies.values()}
            assert {d["file"] for d in manifest["delivered"]} == set(bodies)
            for body in bodies.values():
                assert body["format"] == "authbench-hdr/3" and body["window"] == seq
                assert body["client_id"]  # written by the master, who names the sender
                assert (body["measured_from"], body["measured_until"]) == (
                    window.measure_from, window.measure_until)
                assert floor_count(body) > 50
                assert 0 < body["process_cpu"]["cpu_seconds"] < body["process_cpu"]["seconds"]
                assert abs(body["process_cpu"]["seconds"] - 2) < 0.2
            # The outside worker's CPU goes into cell.json: the runner cannot sample it.
            reported = locust.reported_generator(files)
            assert [r["pid"] for r in reported] == [workers_started[0].pid]
            assert reported[0]["cpu_timeline"][-1] == [window.measure_until,
                                                       reported[0]["cpu_seconds"]]
    finally:
        outcome = locust.stop()
    assert outcome.exit_code == 0, outcome.log_tail
    # Nothing written where the outside worker runs (its folder, its temporary folder).
    assert list(home.iterdir()) == []
    # The workers' hellos before they became Locust workers took no worker index.
    master_log = (tmp_path / "run" / "locust.log").read_text()
    assert "(index 0) reported as ready" in master_log
    assert "(index 1) reported as ready" in master_log
    worker_log = (tmp_path / "elsewhere.log").read_text()
    assert "joining the master" in worker_log and "floor.py" in worker_log


def test_a_faults_window_brings_every_workers_timeline_and_the_outside_probes(
        start_target: StartTarget, tmp_path: Path,
        workers_started: list[subprocess.Popen[bytes]]) -> None:
    """A fault timeline comes with each worker's histograms, and revocation trials from a
    worker with no run folder on its host; the master writes both into the cell."""
    target = start_target(AUTH_MODE="session", SEED_USERS="50")
    port = free_port()
    cell = Cell(mode="session", scenario="faults", users=8, workers=1, duration=3, warmup=0.5)
    run = tmp_path / "run"  # the cell folder: where the runner's own worker writes at exit
    locust = LocustProcesses(cell, target.url, run, 120, seed_users=50, external_workers=1,
                             master_bind_port=port, extra_env={"AUTHBENCH_PROBES": "4"})
    home = tmp_path / "elsewhere"
    try:
        locust.start()
        workers_started.append(outside_worker(port, home))
        locust.wait_ready(60)
        window = locust.announce(run, 0.5, 3)
        files = locust.collect(window)
        assert locust.missing_workers(window, files) == []
        inside, outside = locust.workers[0].pid, workers_started[0].pid
        timelines = {read_json(p)["pid"]: read_json(p) for p in run.glob("timeline-*.json")}
        assert set(timelines) == {inside, outside}
        for body in timelines.values():
            assert body["format"] == "authbench-timeline/1" and body["window"] == window.seq
            assert (body["measured_from"], body["measured_until"]) == (
                window.measure_from, window.measure_until)
            assert sum(second["ok"] for second in body["seconds"]) > 20
            assert {second["second"] for second in body["seconds"]} <= {0, 1, 2}
        # The outside worker's trials so far, written by the master as the window closed.
        [probe] = [read_json(p) for p in run.glob("probe-*.json")]
        assert probe["pid"] == outside and probe["format"] == "authbench-probe/1"
        assert probe["trials"] and all(t["observed_s"] > 0 for t in probe["trials"])
        assert any(w["rejected_after_s"] is not None
                   for t in probe["trials"] for w in t["watches"])
    finally:
        outcome = locust.stop()
    assert outcome.exit_code == 0, outcome.log_tail
    # The runner's own worker writes its trials as it quits, as a single process does.
    assert {read_json(p)["pid"] for p in run.glob("probe-*.json")} == {inside, outside}
    assert list(home.iterdir()) == []  # nothing written where the outside worker runs


def test_a_worker_killed_mid_window_marks_its_window_short_and_by_name(
        start_target: StartTarget, tmp_path: Path) -> None:
    target = start_target(AUTH_MODE="none")
    cell = Cell(mode="none", scenario="floor", users=4, workers=2, duration=1, warmup=0)
    locust = LocustProcesses(cell, target.url, tmp_path / "run", 120)
    try:
        locust.start()
        locust.wait_ready(60)
        window = locust.announce(tmp_path / "window-1", 0, 3)
        killed, kept = locust.workers
        time.sleep(1.5)
        killed.send_signal(signal.SIGKILL)
        files = locust.collect(window)
        assert locust.dead() is None  # the master goes on with the other worker
        missing = locust.missing_workers(window, files)
        assert [(m["pid"], "dead or late" in m["why"]) for m in missing] == [(killed.pid, True)]
        assert f"pid {killed.pid}" in short_reason(1, missing)
        # Nothing else is lost: the other worker's window is whole.
        assert [read_json(f)["pid"] for f in files] == [kept.pid]
        assert floor_count(read_json(files[0])) > 50
        # The next window runs without it, and says so.
        wait_for(lambda: "setting state to missing" in locust.log_tail(200), 20,
                 "the master to miss the killed worker")
        window = locust.announce(tmp_path / "window-2", 0, 1)
        files = locust.collect(window)
        missing = locust.missing_workers(window, files)
        assert [(m["pid"], m["why"]) for m in missing] == [
            (killed.pid, "was gone before the window opened")]
        assert [read_json(f)["pid"] for f in files] == [kept.pid]
    finally:
        locust.stop()


def test_a_worker_whose_clock_is_an_hour_ahead_measures_the_window(
        start_target: StartTarget, tmp_path: Path,
        workers_started: list[subprocess.Popen[bytes]]) -> None:
    """The master sends seconds from now; the worker sets them on its own clock."""
    target = start_target(AUTH_MODE="none")
    skewed = tmp_path / "skewed-clock"
    skewed.mkdir()
    (skewed / "sitecustomize.py").write_text(SKEWED_CLOCK)
    port = free_port()
    cell = Cell(mode="none", scenario="floor", users=8, workers=1, duration=1, warmup=0)
    locust = LocustProcesses(cell, target.url, tmp_path / "run", 120, external_workers=1,
                             master_bind_port=port)
    try:
        locust.start()
        workers_started.append(outside_worker(port, tmp_path / "skewed", {
            "PYTHONPATH": f"{skewed}{os.pathsep}{ROOT}"}))
        locust.wait_ready(60)
        window = locust.announce(tmp_path / "window", 0.5, 3, rate=200)
        files = locust.collect(window)
        assert locust.missing_workers(window, files) == []
    finally:
        locust.stop()
    assert "clock skewed by 3600 s" in (tmp_path / "skewed.log").read_text()
    bodies = {body["pid"]: body for body in hdr_files(window.folder).values()}
    for pid in (locust.workers[0].pid, workers_started[0].pid):
        body = bodies[pid]
        # Each worker offered half of 200 req/s for the 3 measured seconds, on time.
        assert body["open"]["scheduled"] == 300, body["open"]
        assert body["open"]["sent"] >= 295, body["open"]
        assert floor_count(body) >= 295
        lag = HdrHistogram.decode(body["histograms"]["schedule-lag"])
        assert lag.get_value_at_percentile(99) < 50_000  # us: sent on time
