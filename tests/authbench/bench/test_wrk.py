"""wrk as the independent load tool: real wrk against a real target."""

from __future__ import annotations

import shutil

import httpx
import pytest

from authbench.bench.targetbench import summarize
from authbench.bench.wrk import WrkResult, run_wrk
from tests.conftest import StartTarget

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


@pytest.mark.slow  # wrk against a real target
@needs_wrk
def test_wrk_counts_requests_and_sums_server_timing(start_target: StartTarget) -> None:
    target = start_target(AUTH_MODE="jwt")
    login = httpx.post(f"{target.url}/auth/login",
                       json={"username": "user2", "password": "pw-user2"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    result = run_wrk(f"{target.url}/api/me", seconds=1, connections=4, headers=headers)
    assert result.requests > 100
    assert result.non_2xx == 0 and result.socket_errors == 0
    assert 0.9 < result.seconds < 1.5
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms
    assert result.auth_ms_mean is not None and 0.001 < result.auth_ms_mean < 50


@pytest.mark.slow  # wrk against a real target
@needs_wrk
def test_wrk_reports_rejections_as_non_2xx(start_target: StartTarget) -> None:
    target = start_target(AUTH_MODE="jwt")
    result = run_wrk(f"{target.url}/api/me", seconds=1, connections=2)
    assert result.non_2xx == result.requests > 0


def _wrk(rps: float, auth_ms: float | None) -> WrkResult:
    return WrkResult(requests=int(rps * 10), seconds=10.0, non_2xx=0, socket_errors=0,
                     p50_ms=1.0, p90_ms=2.0, p99_ms=3.0, auth_ms_mean=auth_ms)


def test_summarize_explains_the_drop_with_the_serial_auth_time() -> None:
    # 10,000 req/s -> 100 us per request; 8,000 req/s -> 125 us: a 25 us drop.
    noauth = [_wrk(10_000, 0.0), _wrk(10_000, 0.0), _wrk(10_000, 0.0)]
    me = [_wrk(8_000, 5.0), _wrk(8_000, 5.0), _wrk(8_000, 5.0)]
    serial = [_wrk(2_000, 0.020), _wrk(2_000, 0.025), _wrk(2_000, 0.030)]
    row = summarize("x", 0.70, noauth, me, serial)
    assert row.ratio == pytest.approx(0.8)
    assert row.drop_us == pytest.approx(25.0)
    assert row.auth_us == pytest.approx(25.0)
    assert row.explained == pytest.approx(1.0)
    assert row.auth_loaded_us == pytest.approx(5000.0)
    assert row.meets_bar is True
    assert summarize("y", 0.90, noauth, me, serial).meets_bar is False
