"""analysis.cost.speed: the machine's speed over a run and between runs, from speed.json.

The fixtures under tests/fixtures/speed/ are written by hand so every figure can be
worked out: each probe's machine figure is the median of its two CPUs' CPU ns per
iteration (e.g. 6,680 and 6,720 give 6,700).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.cost.speed import (
    FLAG_OVER,
    NOT_MEASURED,
    SpeedSummary,
    is_different_speed,
    load_speed,
    speed_lines,
    speed_ratio,
    summarize,
)
from analysis.data.formats import UnknownFormat

SPEED = Path(__file__).resolve().parents[2] / "fixtures" / "speed"
STEADY, SLOWER, DRIFTING = SPEED / "steady", SPEED / "slower", SPEED / "drifting"


def _summary(run: Path) -> SpeedSummary:
    summary = summarize(run)
    assert summary is not None
    return summary


def test_a_steady_run_moves_little_and_flags_nothing() -> None:
    summary = _summary(STEADY)
    assert [p.label for p in summary.probes] == ["start", "round 2", "round 3", "round 4", "end"]
    assert [p.ns_per_iteration for p in summary.probes] == [6700, 6760, 6650, 6820, 6745]
    assert summary.largest_move == pytest.approx(6700 / 6820 - 1)  # round 4: -1.8 %
    assert summary.spread == pytest.approx(6820 / 6650 - 1)
    assert summary.flagged == []
    assert summary.speed == 6745  # the median probe
    assert speed_lines(STEADY) == [
        "Machine speed: moved at most 1.8 % from the start during the run (5 probes, CPU per "
        "probe iteration: start 6,700 ns, end 6,745 ns; fastest to slowest 2.6 %)."]


def test_a_round_that_moved_over_ten_percent_is_flagged() -> None:
    summary = _summary(DRIFTING)
    ((probe, move),) = summary.flagged
    assert probe.label == "round 3" and move == pytest.approx(6700 / 8370 - 1)  # -20.0 %
    assert abs(move) > FLAG_OVER
    assert summary.largest_move == pytest.approx(move)
    lines = speed_lines(DRIFTING)
    assert lines[0].startswith("Machine speed: moved at most 20.0 % from the start")
    assert lines[1] == ("  Moved over 10 % from the start (flagged; the windows after each ran "
                        "on a faster or slower machine): round 3 -20.0 %.")
    # Round 4's probe ran 13,980 ns of wall time for 6,990 of CPU on CPU 0: half the core.
    assert lines[2] == ("  Another program was running (the probe's share of a core, wall "
                        "time over CPU time): round 4 50 %.")
    assert len(lines) == 3


def test_speed_ratio_is_b_over_a_from_each_runs_median_probe() -> None:
    ratio = speed_ratio(STEADY, SLOWER)
    assert ratio == pytest.approx(6745 / 10150)  # B ran 0.66x as fast
    assert speed_ratio(SLOWER, STEADY) == pytest.approx(10150 / 6745)
    assert speed_ratio(STEADY, STEADY) == 1.0
    assert is_different_speed(ratio) and not is_different_speed(1.0)
    assert not is_different_speed(None)


def test_a_run_without_speed_json_is_not_measured(tmp_path: Path) -> None:
    assert load_speed(tmp_path) == [] and summarize(tmp_path) is None
    assert speed_lines(tmp_path) == [NOT_MEASURED]
    assert speed_ratio(tmp_path, STEADY) is None and speed_ratio(STEADY, tmp_path) is None


def test_one_probe_says_movement_was_not_measured(tmp_path: Path) -> None:
    data = json.loads((STEADY / "speed.json").read_text())
    (tmp_path / "speed.json").write_text(json.dumps({**data, "probes": data["probes"][:1]}))
    assert speed_lines(tmp_path) == [
        "Machine speed: one probe (start, 6,700 ns of CPU per probe iteration): its movement "
        "during the run was not measured."]


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(UnknownFormat, match="authbench-speed/9"):
        speed_lines(SPEED / "unknown")
