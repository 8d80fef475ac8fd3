"""bench-locust's measurement: Locust on /noauth through a real process."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.data.hdr import load_cell_histograms
from authbench.bench.locust import locust_rps
from authbench.run.cell import Cell
from authbench.run.locustrun import run_locust
from tests.conftest import StartTarget

pytestmark = pytest.mark.slow  # real Locust runs against real targets


def test_locust_floor_rate_is_measured(start_target: StartTarget) -> None:
    target = start_target(AUTH_MODE="none")
    rps, warnings = locust_rps(target.url, connections=4, seconds=2, workers=0)
    assert rps > 50
    assert warnings == 0  # four users cannot saturate Locust's CPU


def test_floor_cell_records_histograms(start_target: StartTarget, tmp_path: Path) -> None:
    target = start_target(AUTH_MODE="none")
    cell = Cell(mode="none", scenario="floor", users=2, duration=2, warmup=1)
    outcome = run_locust(cell, target.url, tmp_path)
    assert outcome.exit_code == 0, outcome.log_tail
    histograms, _ = load_cell_histograms(tmp_path)
    assert histograms["GET /noauth"].get_total_count() > 20
