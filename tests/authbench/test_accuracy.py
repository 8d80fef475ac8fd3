"""bench-locust's measurement: Locust on /noauth through a real process."""

from __future__ import annotations

from authbench.accuracy import locust_rps
from tests.conftest import StartTarget


def test_locust_floor_rate_is_measured(start_target: StartTarget) -> None:
    target = start_target(AUTH_MODE="none")
    rps, warnings = locust_rps(target.url, connections=4, seconds=2, workers=0)
    assert rps > 50
    assert warnings == 0  # four users cannot saturate Locust's CPU
