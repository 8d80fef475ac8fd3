"""Every scenario drives every mode through a real Locust process, without failures."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from analysis.data.hdr import load_cell_histograms
from analysis.data.load import locust_row
from authbench.infra.ports import free_port
from authbench.run.cell import Cell
from authbench.run.locustrun import LOADTESTS, STOP_SECONDS, run_locust
from tests.conftest import StartTarget

pytestmark = pytest.mark.slow  # real Locust runs against real targets


@pytest.mark.parametrize("mode", ["none", "session", "jwt", "hybrid"])
def test_read_scenario_runs_clean_in_every_mode(
    mode: str, start_target: StartTarget, tmp_path: Path
) -> None:
    target = start_target(AUTH_MODE=mode, JWT_REVOCATION="blocklist")
    cell = Cell(mode=mode, users=4, duration=3, warmup=1)
    outcome = run_locust(cell, target.url, tmp_path)
    assert outcome.exit_code == 0, outcome.log_tail
    me = locust_row(tmp_path / "locust_stats.csv", "/api/me")
    assert me is not None and int(me["Request Count"]) > 50
    assert int(me["Failure Count"]) == 0
    if mode == "hybrid":
        refresh = locust_row(tmp_path / "locust_stats.csv", "/auth/refresh")
        assert refresh is not None and int(refresh["Request Count"]) > 0
        assert int(refresh["Failure Count"]) == 0
    assert (tmp_path / "locust_stats_history.csv").exists()
    assert (tmp_path / "locust.html").exists()
    histograms, failures = load_cell_histograms(tmp_path)
    assert histograms["GET /api/me"].get_total_count() > 50
    assert failures == {}
    # Every /api/me answer carried Server-Timing: the auth step's wall time and own CPU.
    count = histograms["GET /api/me"].get_total_count()
    auth = histograms["auth GET /api/me"]
    assert auth.get_total_count() == histograms["auth-cpu GET /api/me"].get_total_count() == count
    assert auth.get_value_at_percentile(50) < histograms["GET /api/me"].get_value_at_percentile(50)
    # The store metric is there exactly when the step awaited a store (none in memory).
    assert "store GET /api/me" not in histograms


@pytest.mark.parametrize("scenario", ["login", "lifecycle"])
def test_login_and_lifecycle_scenarios(
    scenario: str, start_target: StartTarget, tmp_path: Path
) -> None:
    target = start_target(AUTH_MODE="session")
    cell = Cell(mode="session", scenario=scenario, users=2, duration=3, warmup=0)
    outcome = run_locust(cell, target.url, tmp_path)
    assert outcome.exit_code == 0, outcome.log_tail
    login = locust_row(tmp_path / "locust_stats.csv", "/auth/login")
    assert login is not None and int(login["Request Count"]) > 3
    assert int(login["Failure Count"]) == 0
    if scenario == "lifecycle":
        logout = locust_row(tmp_path / "locust_stats.csv", "/auth/logout")
        assert logout is not None and int(logout["Request Count"]) > 0
        me = locust_row(tmp_path / "locust_stats.csv", "/api/me")
        assert me is not None and int(me["Failure Count"]) == 0


def test_master_and_workers_merge_their_histograms(
    start_target: StartTarget, tmp_path: Path
) -> None:
    target = start_target(AUTH_MODE="jwt")
    cell = Cell(mode="jwt", users=4, workers=2, duration=3, warmup=0)
    outcome = run_locust(cell, target.url, tmp_path)
    assert outcome.exit_code == 0, outcome.log_tail
    files = list(tmp_path.glob("hdr-*.json"))
    assert len(files) == 2  # one per worker; the master records nothing itself
    histograms, _ = load_cell_histograms(tmp_path)
    me = locust_row(tmp_path / "locust_stats.csv", "/api/me")
    assert me is not None
    # The merged histograms hold at least what Locust's own (master) stats counted, less
    # the requests outside the measured window (each user's first, before it opened). Not
    # at most: under load the master can stop before a worker's last stats report arrives
    # (a fresh-clone CI run: 2,425 in the master's stats, 4,995 in the workers' files).
    # At most what 4 users can complete in the 3 s window at the fastest latency seen.
    locust_count = int(me["Request Count"])
    merged = histograms["GET /api/me"]
    assert 0.9 * locust_count <= merged.get_total_count()
    assert merged.get_total_count() <= cell.users * cell.duration * 1e6 / merged.get_min_value()


def test_external_workers_join_a_known_port(start_target: StartTarget, tmp_path: Path) -> None:
    """--external-workers: a worker started elsewhere (`authbench worker`) connects to the
    fixed master port, takes the master's scenario, and sends its histograms back."""
    target = start_target(AUTH_MODE="jwt")
    port = free_port()
    worker_dir = tmp_path / "remote"
    worker_dir.mkdir()
    worker = subprocess.Popen(
        [sys.executable, "-m", "authbench", "worker", "--master", f"127.0.0.1:{port}"],
        cwd=worker_dir, env={k: v for k, v in os.environ.items()
                             if not k.startswith("AUTHBENCH_")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        cell = Cell(mode="jwt", users=2, duration=3, warmup=0)
        outcome = run_locust(cell, target.url, tmp_path, external_workers=1,
                             master_bind_port=port)
        assert outcome.exit_code == 0, outcome.log_tail
        assert f"--master-bind-port {port}" in " ".join(outcome.command)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    # The remote worker measured the load; its master wrote the file into the cell folder.
    histograms, _ = load_cell_histograms(tmp_path)
    assert histograms["GET /api/me"].get_total_count() > 20
    assert not list(worker_dir.iterdir())


def test_by_hand_run_records_the_whole_run(start_target: StartTarget, tmp_path: Path) -> None:
    """Without the runner (compose, by hand), AUTHBENCH_HDR_DIR records everything after
    AUTHBENCH_WARMUP into one file at exit."""
    target = start_target(AUTH_MODE="none")
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOADTESTS / "floor.py"), "--headless",
         "--host", target.url, "-u", "2", "-r", "2", "-t", "3s"],
        env={**os.environ, "AUTHBENCH_HDR_DIR": str(tmp_path), "AUTHBENCH_WARMUP": "1"},
        capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    histograms, _ = load_cell_histograms(tmp_path)
    assert histograms["GET /noauth"].get_total_count() > 20


def test_floor_drives_one_path_with_a_fixed_token(start_target: StartTarget,
                                                 tmp_path: Path) -> None:
    """AUTHBENCH_PATH and AUTHBENCH_TOKEN: one token on /api/me, as wrk would send it."""
    target = start_target(AUTH_MODE="jwt")
    login = httpx.post(f"{target.url}/auth/login",
                       json={"username": "user3", "password": "pw-user3"})
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOADTESTS / "floor.py"), "--headless",
         "--host", target.url, "-u", "2", "-r", "2", "-t", "2s", "--csv", str(tmp_path / "s")],
        env={**os.environ, "AUTHBENCH_PATH": "/api/me",
             "AUTHBENCH_TOKEN": login.json()["access_token"]},
        capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    with (tmp_path / "s_stats.csv").open() as table:
        stats = {row["Name"]: row for row in csv.DictReader(table)}
    assert int(stats["/api/me"]["Request Count"]) > 20
    assert stats["/api/me"]["Failure Count"] == "0"  # every request carried a valid token
    assert "/noauth" not in stats


def test_locust_started_with_sigint_ignored_still_stops_at_once(
    start_target: StartTarget, tmp_path: Path
) -> None:
    """A runner started as a background job of a non-interactive shell has SIGINT
    ignored, and so do its children: Locust must still stop when asked, not after the
    kill timeout with exit -9."""
    target = start_target(AUTH_MODE="none")
    cell = Cell(mode="none", scenario="floor", users=2, duration=1, warmup=0)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        started = time.monotonic()
        outcome = run_locust(cell, target.url, tmp_path)
        elapsed = time.monotonic() - started
    finally:
        signal.signal(signal.SIGINT, previous)
    assert outcome.exit_code == 0, outcome.log_tail
    assert elapsed < STOP_SECONDS, elapsed
    histograms, _ = load_cell_histograms(tmp_path)
    assert histograms["GET /noauth"].get_total_count() > 10
