"""loadtests/read.py drives every mode through a real Locust process, without failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from authbench.twins import read_locust_stats, run_locust
from tests.conftest import StartTarget


@pytest.mark.parametrize("mode", ["none", "session", "jwt", "hybrid"])
def test_locust_read_scenario_runs_clean(
    mode: str, start_target: StartTarget, tmp_path: Path
) -> None:
    target = start_target(AUTH_MODE=mode, JWT_REVOCATION="blocklist")
    done = run_locust(target.url, tmp_path / "locust", users=4, seconds=3)
    assert done.returncode == 0, done.stderr[-2000:]
    me = read_locust_stats(tmp_path / "locust_stats.csv", "/api/me")
    assert int(me["Request Count"]) > 50
    assert int(me["Failure Count"]) == 0
    login = read_locust_stats(tmp_path / "locust_stats.csv", "/auth/login")
    assert int(login["Request Count"]) == 4 and int(login["Failure Count"]) == 0
    if mode == "hybrid":
        refresh = read_locust_stats(tmp_path / "locust_stats.csv", "/auth/refresh")
        assert int(refresh["Request Count"]) > 0 and int(refresh["Failure Count"]) == 0
    assert (tmp_path / "locust_stats_history.csv").exists()
