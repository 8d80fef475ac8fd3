"""Server CPU per request is counted over the window the latency histograms cover."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.hdr import load_cell_histograms, measured_bounds
from analysis.load import cpu_between, load_run
from tests.analysis.fixtures import ROOT

CELL = "001-none-read-u10-n1-r1"


def test_cpu_between_interpolates_and_clamps() -> None:
    timeline = [[100.0, 0.0], [101.0, 1.0], [103.0, 2.0]]
    assert cpu_between(timeline, 100.5, 102.0) == pytest.approx(1.0)  # 0.5 -> 1.5
    assert cpu_between(timeline, 90.0, 200.0) == pytest.approx(2.0)  # outside: the ends


def test_cpu_per_request_uses_the_histograms_window_when_nodes_kept_a_timeline(
    tmp_path: Path
) -> None:
    run = tmp_path / "tiny"
    shutil.copytree(ROOT / "tiny", run)
    folder = run / "cells" / CELL
    bounds = measured_bounds(folder)
    assert bounds is not None
    start, end = bounds
    record = json.loads((folder / "cell.json").read_text())
    # Heavy CPU before and after the window (a login storm, the shutdown) must not count.
    record["nodes"][0]["cpu_timeline"] = [[start - 5, 0.0], [start, 40.0], [end, 42.0],
                                          [end + 5, 90.0]]
    (folder / "cell.json").write_text(json.dumps(record))
    histograms, failures = load_cell_histograms(folder)
    requests = sum(h.get_total_count() for name, h in histograms.items()
                   if not name.startswith("auth ")) + sum(failures.values())
    frame = load_run(run)
    row = frame[frame["cell"] == CELL].iloc[0]
    assert row["cpu_ms_per_request"] == pytest.approx(2.0 * 1000 / requests)
    # A cell without a timeline keeps the older estimate (tests/analysis/test_report.py).
    other = frame[frame["cell"] == "002-session-memory-read-u10-n1-r1"].iloc[0]
    assert other["cpu_ms_per_request"] > 0
