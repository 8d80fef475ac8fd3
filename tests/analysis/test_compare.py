"""compare: cost per request, p99 and (target-bound only) req/s, judged over repeats."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.compare import (
    LATENCY_FAIL_OVER,
    Change,
    compare_frames,
    format_changes,
    min_p_value,
    permutation_p_value,
)
from analysis.load import load_run
from authbench.cli import main
from tests.analysis.fixtures import PAIR_KEY, ROOT, Config, build_pair, write_run

BEFORE, AFTER = ROOT / "before", ROOT / "after"


def test_pair_fixture_is_what_the_builder_makes(tmp_path: Path) -> None:
    built_before, built_after = build_pair(tmp_path)
    for built, stored in ((built_before, BEFORE), (built_after, AFTER)):
        files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(stored) for p in stored.rglob("*") if p.is_file())
        for path in files:
            assert (built / path).read_bytes() == (stored / path).read_bytes(), path


def test_permutation_test_on_known_samples() -> None:
    # Completely separated samples of 4 and 4: only 2 of the C(8,4)=70 splits are as extreme.
    assert permutation_p_value([1, 2, 3, 4], [11, 12, 13, 14]) == pytest.approx(2 / 70)
    assert min_p_value(4, 4) == pytest.approx(2 / 70)
    assert min_p_value(3, 3) == pytest.approx(0.1)  # 3 repeats can never reach 0.05
    # Identical samples: every split is as extreme as the observed difference (zero).
    assert permutation_p_value([5, 5, 5], [5, 5, 5]) == 1.0
    assert math.isnan(permutation_p_value([], [1.0]))


@pytest.fixture(scope="module")
def pair() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The checked-in pair, loaded once."""
    return load_run(BEFORE), load_run(AFTER)


def by_metric(before: Path | pd.DataFrame, after: Path | pd.DataFrame) -> dict[str, Change]:
    """PAIR_KEY's changes by metric (a floor, when the runs have one, is left out)."""
    frames = [run if isinstance(run, pd.DataFrame) else load_run(run) for run in (before, after)]
    changes = [c for c in compare_frames(*frames) if not c.key.startswith("none-")]
    assert {c.key for c in changes} == {PAIR_KEY}
    return {c.metric: c for c in changes}


def test_compare_finds_the_regression(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    changes = by_metric(*pair)
    cost = changes["cost_us"]
    assert cost.before == pytest.approx(9025.0)  # median of 9,000 9,100 8,900 9,050 µs
    assert cost.after == pytest.approx(11732.5)  # each repeat x 1.3
    assert cost.relative == pytest.approx(0.30)
    assert cost.repeats == (4, 4) and cost.is_separated
    assert cost.is_testable and cost.p_value == pytest.approx(2 / 70)
    assert cost.is_regression(0.10)
    assert not cost.is_regression(0.35)  # 30 % more is under a 35 % threshold
    # Every window was target-bound, so req/s measured the target: compared too.
    rps = changes["rps"]
    assert rps.before == pytest.approx(100.5)  # median of 100, 102, 98, 101 req/s
    assert rps.after == pytest.approx(77.25)  # median of 77, 78, 76, 77.5
    assert rps.is_regression(0.10)
    assert not changes["p99_ms"].is_regression(0.10)  # latency did not change
    # The other way round it is cheaper: better, never a regression.
    backwards = by_metric(pair[1], pair[0])
    assert backwards["cost_us"].relative == pytest.approx(9025 / 11732.5 - 1)
    assert not any(c.is_regression(0.0) for c in backwards.values())
    (_, line, *_) = format_changes(list(backwards.values()), 0.10)
    assert " cost_us " in line and line.endswith("better")


def test_compare_command_exits_1_on_regression(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(BEFORE), str(AFTER)]) == 1
    out = capsys.readouterr().out
    cost_line = next(line for line in out.splitlines() if " cost_us " in line)
    assert "+30.0%" in cost_line and "0.029" in cost_line
    assert cost_line.endswith("REGRESSION")
    assert main(["compare", str(BEFORE), str(AFTER), "--fail-over", "35"]) == 0
    assert "REGRESSION" not in capsys.readouterr().out
    assert main(["compare", str(BEFORE), "/nonexistent"]) == 2


def test_an_a_a_pair_is_no_regression(tmp_path: Path, pair: tuple[pd.DataFrame, pd.DataFrame],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again"
    shutil.copytree(BEFORE, again)
    changes = by_metric(pair[0], again)
    assert all(c.relative == 0 and not c.is_separated for c in changes.values())
    assert not any(c.is_regression(0.0) for c in changes.values())
    assert main(["compare", str(BEFORE), str(again)]) == 0
    out = capsys.readouterr().out
    assert "REGRESSION" not in out
    assert out.count("no change beyond the threshold") == 3  # cost, req/s, p99


def noisy(costs: tuple[float, ...], generator_s: float = 9.5) -> Config:
    """Windows limited by the load generator (95 % busy), 500 requests each."""
    return Config(PAIR_KEY, {"mode": "jwt"}, counts=(500,) * len(costs), target_us=costs,
                  generator_s=generator_s)


def test_medians_apart_within_the_spread_are_indistinguishable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An A/A pair with noisy repeats: the medians differ by 13.7 %, but the ranges
    # [8,000, 11,000] and [9,000, 10,500] overlap.
    a = write_run(tmp_path / "a", [noisy((8000.0, 8500.0, 9000.0, 11000.0))])
    b = write_run(tmp_path / "b", [noisy((9000.0, 9900.0, 10000.0, 10500.0))])
    cost = by_metric(a, b)["cost_us"]
    assert cost.relative == pytest.approx(9950 / 8750 - 1)
    assert not cost.is_separated and not cost.is_regression(0.10)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "within the spread of the repeats (indistinguishable)" in out
    assert "REGRESSION" not in out


def test_rps_is_not_compared_when_the_windows_were_not_target_bound(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same cost, 30 % fewer requests: in 'slow' the generator limited the windows
    # (96 %), so its req/s is the generator's, not the target's. 'fast' was target-bound.
    fast = write_run(tmp_path / "fast", [Config(
        PAIR_KEY, {"mode": "jwt"}, counts=(1000,) * 4,
        target_us=(9000.0, 9100.0, 8900.0, 9050.0))])
    slow = write_run(tmp_path / "slow", [Config(
        PAIR_KEY, {"mode": "jwt"}, counts=(700,) * 4,
        target_us=(9000.0, 9100.0, 8900.0, 9050.0), generator_s=9.6)])
    fast_frame, slow_frame = load_run(fast), load_run(slow)
    assert set(by_metric(fast_frame, slow_frame)) == {"cost_us", "p99_ms"}
    assert set(by_metric(slow_frame, slow_frame)) == {"cost_us", "p99_ms"}
    assert set(by_metric(fast_frame, fast_frame)) == {"cost_us", "rps", "p99_ms"}
    assert main(["compare", str(fast), str(slow)]) == 0
    assert " rps " not in capsys.readouterr().out


def test_one_repeat_is_reported_but_never_called(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", [noisy((8000.0,))])
    b = write_run(tmp_path / "b", [noisy((12000.0,))])
    cost = by_metric(a, b)["cost_us"]
    assert cost.relative == pytest.approx(0.5) and cost.repeats == (1, 1)
    assert not cost.has_intervals and not cost.is_testable
    assert not cost.is_regression(0.10)
    assert main(["compare", str(a), str(b)]) == 0
    cost_line = next(line for line in capsys.readouterr().out.splitlines()
                     if " cost_us " in line)
    assert cost_line.endswith("+50.0%       -  worse (one repeat: no interval, not judged)")


def test_three_separated_repeats_are_called_by_their_ranges(tmp_path: Path) -> None:
    # 3 repeats cannot reach p < 0.05 (min p 0.1): the separated ranges decide.
    a = write_run(tmp_path / "a", [noisy((9000.0, 9100.0, 8900.0))])
    b = write_run(tmp_path / "b", [noisy((11700.0, 11830.0, 11570.0))])
    changes = compare_frames(load_run(a), load_run(b))
    cost = next(c for c in changes if c.metric == "cost_us")
    assert not cost.is_testable and math.isnan(cost.p_value) and cost.is_separated
    assert cost.is_regression(0.10)
    (line,) = [x for x in format_changes(changes, 0.10) if " cost_us " in x]
    assert line.endswith("REGRESSION (ranges over repeats do not overlap)")
    assert main(["compare", str(a), str(b)]) == 1


def test_a_significant_change_within_the_spread_is_no_regression() -> None:
    change = Change("k", "cost_us", before=100.0, after=150.0, p_value=0.01,
                    is_testable=True, is_separated=False, repeats=(6, 6))
    assert not change.is_regression(0.10)
    assert change.is_worse
    not_significant = Change("k", "cost_us", before=100.0, after=150.0, p_value=0.2,
                             is_testable=True, is_separated=True, repeats=(6, 6))
    assert not not_significant.is_regression(0.10)
    (_, line) = format_changes([not_significant], 0.10)
    assert line.endswith("not significant")


def test_unequal_sizes_and_many_repeats() -> None:
    assert min_p_value(3, 4) == pytest.approx(1 / 35)  # no swapped twin split
    assert permutation_p_value([1, 2, 3], [11, 12, 13, 14]) == pytest.approx(1 / 35)
    # 12 vs 12 repeats: too many splits to enumerate, so a seeded Monte Carlo test.
    before = [100.0 + i for i in range(12)]
    after = [50.0 + i for i in range(12)]
    p = permutation_p_value(before, after)
    assert 0 < p < 0.001
    assert permutation_p_value(before, after) == p  # seeded: the same answer twice


def test_a_regression_over_many_repeats_is_caught() -> None:
    change = Change("k", "rps", before=100.0, after=50.0,
                    p_value=permutation_p_value([100.0] * 6 + [101.0] * 6,
                                                [50.0] * 6 + [51.0] * 6),
                    is_testable=True, repeats=(12, 12))
    assert change.is_regression(0.10)


def _windows(p99: list[float], foreign: list[float], limits: list[str]) -> pd.DataFrame:
    """Per-window rows of one configuration, as analysis.costs.hot_rows returns them."""
    return pd.DataFrame({
        "status": "ok", "endpoint": "GET /api/me", "key": "jwt-memory-HS256-read-u20-n1",
        "mode": "jwt", "users": 20, "nodes": 1, "scenario": "read",
        "repeat": list(range(1, len(p99) + 1)),
        "cell": [f"{i:03d}-w" for i in range(len(p99))], "server_cpu_us": 200.0,
        "rps": 2000.0, "p99_ms": p99, "foreign_cpu_share": foreign, "bottleneck": limits})


def test_latency_of_a_disturbed_run_is_not_comparable() -> None:
    quiet = _windows([5.0, 5.5, 6.0], [0.05, 0.06, 0.05], ["target"] * 3)
    busy = _windows([20.0, 22.0, 24.0], [0.05, 0.40, 0.30], ["target"] * 3)
    p99 = {c.metric: c for c in compare_frames(quiet, busy)}["p99_ms"]
    assert p99.is_separated and p99.relative > 2  # 4x worse, ranges far apart...
    assert not p99.is_regression(0.10)  # ...but another program took 40 % of the CPUs
    assert p99.not_comparable == "run B was disturbed by other work (40 % CPU)"
    line = next(x for x in format_changes([p99], 0.10) if "p99_ms" in x)
    assert line.endswith("not comparable: run B was disturbed by other work (40 % CPU)")


def test_latency_under_different_bottlenecks_is_not_comparable() -> None:
    before = _windows([5.0, 5.5, 6.0], [0.05] * 3, ["load generator"] * 3)
    after = _windows([20.0, 22.0, 24.0], [0.05] * 3, ["target", "target", "load generator"])
    p99 = {c.metric: c for c in compare_frames(before, after)}["p99_ms"]
    assert p99.not_comparable == "the bottleneck differed (load generator vs load generator/target)"
    assert not p99.is_regression(0.10)
    # Same bottleneck, quiet machine: a real latency regression is called.
    same = _windows([20.0, 22.0, 24.0], [0.05] * 3, ["load generator"] * 3)
    p99 = {c.metric: c for c in compare_frames(before, same)}["p99_ms"]
    assert p99.not_comparable == "" and p99.is_regression(0.10)


def _floor_and_jwt(floor_us: tuple[float, ...], jwt_us: tuple[float, ...]) -> list[Config]:
    counts = (500,) * len(floor_us)
    return [Config("none-read-u10-n1", {"mode": "none"}, counts=counts, target_us=floor_us),
            Config(PAIR_KEY, {"mode": "jwt"}, counts=counts, target_us=jwt_us)]


def test_a_slower_machine_is_no_regression_relative_to_the_floor(tmp_path: Path) -> None:
    """Everything 20 % dearer (the machine's speed that hour): the ratio to the run's own
    floor holds, so nothing is called, though absolute cost moved beyond its range."""
    before = write_run(tmp_path / "a", _floor_and_jwt((100.0, 102.0, 98.0, 101.0),
                                                      (200.0, 204.0, 196.0, 202.0)))
    after = write_run(tmp_path / "b", _floor_and_jwt((120.0, 122.4, 117.6, 121.2),
                                                     (240.0, 244.8, 235.2, 242.4)))
    changes = by_metric(before, after)
    assert changes["vs_floor"].relative == pytest.approx(0.0, abs=1e-9)
    assert not changes["vs_floor"].is_regression(0.10)
    cost = changes["cost_us"]
    assert cost.relative == pytest.approx(0.2) and cost.is_separated
    assert not cost.is_regression(0.10)
    assert cost.not_comparable.startswith("shown only")
    assert main(["compare", str(before), str(after)]) == 0


def test_an_auth_step_that_got_dearer_is_a_regression_relative_to_the_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = write_run(tmp_path / "a", _floor_and_jwt((100.0, 102.0, 98.0, 101.0),
                                                      (200.0, 204.0, 196.0, 202.0)))
    after = write_run(tmp_path / "b", _floor_and_jwt((100.0, 102.0, 98.0, 101.0),
                                                     (260.0, 265.2, 254.8, 262.6)))
    vs_floor = by_metric(before, after)["vs_floor"]
    assert vs_floor.relative == pytest.approx(200 / 260 - 1)
    assert vs_floor.is_regression(0.10)
    assert main(["compare", str(before), str(after)]) == 1
    assert "vs_floor" in capsys.readouterr().out


def _with_floor(floor_p99: list[float], jwt_p99: list[float]) -> pd.DataFrame:
    """A floor's and a JWT configuration's windows, same bottleneck, quiet machine."""
    floor = _windows(floor_p99, [0.05] * len(floor_p99), ["load generator"] * len(floor_p99))
    floor = floor.assign(key="none-read-u20-n1", mode="none", server_cpu_us=100.0,
                         cell=[f"{i:03d}-f" for i in range(len(floor_p99))])
    jwt = _windows(jwt_p99, [0.05] * len(jwt_p99), ["load generator"] * len(jwt_p99))
    return pd.concat([floor, jwt], ignore_index=True)


def test_latency_that_moved_as_much_as_in_an_a_a_pair_is_not_called() -> None:
    """The whole machine 25 % faster in run B, floor and JWT alike: p99 moved beyond its
    range, but not beyond what two runs of the same code move it (LATENCY_FAIL_OVER)."""
    before = _with_floor([4.0, 4.2, 4.4, 4.1], [8.0, 8.4, 8.8, 8.2])
    after = _with_floor([3.0, 3.15, 3.3, 3.075], [6.0, 6.3, 6.6, 6.15])
    changes = {(c.key, c.metric): c for c in compare_frames(before, after)}
    p99 = changes[("jwt-memory-HS256-read-u20-n1", "p99_ms")]
    assert p99.is_separated and p99.relative == pytest.approx(-0.25) and not p99.not_comparable
    assert p99.limit(0.10) == LATENCY_FAIL_OVER == 0.30
    lines = format_changes(list(changes.values()), 0.10)
    assert not any(line.endswith(("better", "worse", "REGRESSION")) for line in lines)
    # With the latency threshold set to the cost's, the same change is called.
    assert "better" in format_changes([p99], 0.10, 0.10)[1]
    assert not any(c.metric == "p99_floor" for c in changes.values())


def test_latency_added_by_the_auth_step_is_a_regression() -> None:
    before = _with_floor([4.0, 4.2, 4.4, 4.1], [8.0, 8.4, 8.8, 8.2])
    after = _with_floor([4.0, 4.2, 4.4, 4.1], [18.0, 18.4, 18.8, 18.2])  # +10 ms each
    changes = {(c.key, c.metric): c for c in compare_frames(before, after)}
    p99 = changes[("jwt-memory-HS256-read-u20-n1", "p99_ms")]
    assert p99.is_worse and p99.is_separated and p99.is_regression(0.10)
    assert not p99.is_regression(0.10, latency_threshold=1.5)  # +122 %: under a 150 % bar
