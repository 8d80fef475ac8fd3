"""compare and recommend on the checked-in fixture runs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.compare import Change, compare_frames, min_p_value, permutation_p_value
from analysis.load import load_run
from analysis.recommend import format_recommendation, recommend
from authbench.cli import main
from tests.analysis.fixtures import ROOT, build_pair

BEFORE, AFTER, TINY = ROOT / "before", ROOT / "after", ROOT / "tiny"


def test_pair_fixture_is_what_the_builder_makes(tmp_path: Path) -> None:
    built_before, built_after = build_pair(tmp_path)
    for built, stored in ((built_before, BEFORE), (built_after, AFTER)):
        for path in built.rglob("*"):
            if path.is_file():
                assert path.read_bytes() == (stored / path.relative_to(built)).read_bytes()


def test_permutation_test_on_known_samples() -> None:
    # Completely separated samples of 4 and 4: only 2 of the C(8,4)=70 splits are as extreme.
    assert permutation_p_value([1, 2, 3, 4], [11, 12, 13, 14]) == pytest.approx(2 / 70)
    assert min_p_value(4, 4) == pytest.approx(2 / 70)
    assert min_p_value(3, 3) == pytest.approx(0.1)  # 3 repeats can never reach 0.05
    # Identical samples: every split is as extreme as the observed difference (zero).
    assert permutation_p_value([5, 5, 5], [5, 5, 5]) == 1.0
    assert math.isnan(permutation_p_value([], [1.0]))


def test_compare_finds_the_regression() -> None:
    changes = {c.metric: c for c in compare_frames(load_run(BEFORE), load_run(AFTER))}
    rps = changes["rps"]
    assert rps.before == pytest.approx(100.5)  # median of 100, 102, 98, 101 req/s
    assert rps.after == pytest.approx(79.5)
    assert rps.relative == pytest.approx(79.5 / 100.5 - 1)
    assert rps.is_testable and rps.p_value == pytest.approx(2 / 70)
    assert rps.is_regression(0.10)
    assert not rps.is_regression(0.25)  # a 21% drop is under a 25% threshold
    assert not changes["p99_ms"].is_regression(0.10)  # latency did not change


def test_compare_command_exits_1_on_regression(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(BEFORE), str(AFTER)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "-20.9%" in out
    assert main(["compare", str(BEFORE), str(AFTER), "--fail-over", "25"]) == 0
    assert main(["compare", str(AFTER), str(BEFORE)]) == 0  # faster is not a regression
    assert main(["compare", str(BEFORE), "/nonexistent"]) == 2


def test_recommend_picks_the_most_headroom() -> None:
    candidates = recommend(load_run(TINY), p99_ms=2.5, rps=85)
    meeting = [c.key for c in candidates if c.is_meeting]
    # none (100 req/s, p99 0.99 ms) and session on 1 node (90 req/s, p99 2 ms) meet it;
    # session on 2 nodes fails half its requests; JWT's p99 of 3 ms is over 2.5.
    assert meeting == ["none-read-u10-n1", "session-memory-read-u10-n1"]
    lines = format_recommendation(candidates, 2.5, 85)
    assert lines[1].startswith("recommended: none-read-u10-n1")
    assert any("session-memory-read-u10-n2" in line and "50.0% of requests failed" in line
               for line in lines)
    assert any("jwt-memory-HS256-read-u10-n1" in line and "p99 3.00 ms is over 2.5 ms" in line
               for line in lines)


def test_recommend_command_when_nothing_meets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(TINY), "--p99-ms", "0.1", "--rps", "10"]) == 1
    assert "nothing measured in this run meets the target" in capsys.readouterr().out


def test_unequal_sizes_and_many_repeats() -> None:
    assert min_p_value(3, 4) == pytest.approx(1 / 35)  # no swapped twin split
    assert permutation_p_value([1, 2, 3], [11, 12, 13, 14]) == pytest.approx(1 / 35)
    # 12 vs 12 repeats: too many splits to enumerate, so a seeded Monte Carlo test.
    before = [100.0 + i for i in range(12)]
    after = [50.0 + i for i in range(12)]
    p = permutation_p_value(before, after)
    assert 0 < p < 0.001
    assert permutation_p_value(before, after) == p  # seeded: the same answer twice


def test_a_regression_over_many_repeats_is_caught(tmp_path: Path) -> None:
    change = Change("k", "rps", before=100.0, after=50.0,
                    p_value=permutation_p_value([100.0] * 6 + [101.0] * 6,
                                                [50.0] * 6 + [51.0] * 6),
                    is_testable=True)
    assert change.is_regression(0.10)
