"""Every locustfile runs on its own with plain `locust -f`, headless and with its web UI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from analysis.data.load import locust_row
from authbench.infra.ports import free_port
from tests.conftest import StartTarget

pytestmark = pytest.mark.slow  # real Locust runs against real targets

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
SCENARIOS = ["read.py", "login.py", "lifecycle.py", "floor.py"]


def plain_env() -> dict[str, str]:
    """The environment of a user's shell: none of the runner's AUTHBENCH_* variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AUTHBENCH_")}


@pytest.mark.parametrize("locustfile", SCENARIOS)
def test_plain_headless_run(locustfile: str, start_target: StartTarget, tmp_path: Path) -> None:
    target = start_target(AUTH_MODE="jwt")
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOADTESTS / locustfile), "--headless",
         "--host", target.url, "-u", "2", "-r", "2", "-t", "2s", "--csv", str(tmp_path / "s")],
        env=plain_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    total = locust_row(tmp_path / "s_stats.csv", "Aggregated")
    assert total is not None and int(total["Request Count"]) > 5
    assert int(total["Failure Count"]) == 0
    assert list(tmp_path.glob("hdr-*.json")) == []  # histograms only when the runner asks


def test_web_ui_serves_its_page(start_target: StartTarget, tmp_path: Path) -> None:
    target = start_target(AUTH_MODE="session")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOADTESTS / "read.py"), "--host", target.url,
         "--web-host", "127.0.0.1", "--web-port", str(port)],
        env=plain_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        page = None
        while time.monotonic() < deadline:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert page is not None and page.status_code == 200
        assert "locust" in page.text.lower()
    finally:
        process.terminate()
        process.wait(15)


def test_step_shape_holds_each_user_count(start_target: StartTarget, tmp_path: Path) -> None:
    target = start_target(AUTH_MODE="jwt")
    env = {**plain_env(), "AUTHBENCH_STEPS": "1,3", "AUTHBENCH_STEP_SECONDS": "2"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOADTESTS / "steps.py"), "--headless",
         "--host", target.url, "--csv", str(tmp_path / "s"), "--csv-full-history"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert 3.5 < time.monotonic() - started < 30  # two 2-second steps, then it stops itself
    history = (tmp_path / "s_stats_history.csv").read_text().splitlines()
    header = history[0].split(",")
    users = {int(line.split(",")[header.index("User Count")]) for line in history[1:]}
    assert {1, 3} <= users
