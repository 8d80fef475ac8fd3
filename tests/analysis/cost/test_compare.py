"""compare: cost per request, p99 and (target-bound only) req/s, judged over repeats."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from analysis.cost.compare import (
    LATENCY_FAIL_OVER,
    SHOWN_EQUAL_LOAD,
    SHOWN_P99,
    SHOWN_SPEED,
    Change,
    compare_frames,
    format_changes,
    min_p_value,
    permutation_p_value,
    run_compare,
)
from analysis.data.load import load_run
from analysis.latency.equal_load import equal_load_table
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
    """Per-window rows of one configuration, as analysis.cost.table.hot_rows returns them."""
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


# --- the machine's speed (analysis.cost.speed) and latency at equal offered load -----------

SPEED_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "speed"
DIFFERENT_SPEEDS = ("the machines ran at different speeds: B ran 0.66x as fast as A (speed "
                    "probe); absolute cost, req/s and latency are shown, not judged")


def _floor_and_jwt_runs(root: Path, jwt_factor: float = 1.5) -> tuple[Path, Path]:
    """The issue's pair: the same code, B on a machine 1.5x slower. The floor costs 108 µs
    in A and 162 in B, JWT 200 and 300 (x jwt_factor / 1.5), p99 +75 %, nothing saturated."""
    def run(name: str, floor_factor: float, factor: float, latency: float) -> Path:
        counts = (1000,) * 4
        return write_run(root / name, [
            Config("none-read-u10-n1", {"mode": "none"}, counts=counts,
                   target_us=tuple(us * floor_factor for us in (108.0, 110.0, 106.0, 109.0)),
                   latency_us=round(2000 * latency)),
            Config(PAIR_KEY, {"mode": "jwt"}, counts=counts,
                   target_us=tuple(us * factor for us in (200.0, 204.0, 196.0, 202.0)),
                   latency_us=round(4000 * latency))])
    return run("a", 1.0, 1.0, 1.0), run("b", 1.5, jwt_factor, 1.75)


def _with_speed(run: Path, fixture: str) -> Path:
    shutil.copy(SPEED_FIXTURES / fixture / "speed.json", run / "speed.json")
    return run


def test_runs_at_different_speeds_with_the_same_ratios_are_no_regression(
        tmp_path: Path) -> None:
    a, b = _floor_and_jwt_runs(tmp_path)
    # Without a speed probe, p99 is judged as before: +75 % on the floor and on JWT.
    lines, code = run_compare(a, b, 0.10)
    assert code == 1 and sum(line.endswith("REGRESSION") for line in lines) == 2
    # With one, B ran 0.66x as fast (6,745 against 10,150 ns): shown, not judged.
    lines, code = run_compare(_with_speed(a, "steady"), _with_speed(b, "slower"), 0.10)
    assert code == 0 and lines[0] == DIFFERENT_SPEEDS
    p99 = [line for line in lines if " p99_ms " in line]
    assert len(p99) == 2 and all("+75.0%" in line and line.endswith(SHOWN_SPEED) for line in p99)
    cost = [line for line in lines if " cost_us " in line]
    assert len(cost) == 2 and all("+50.0%" in line for line in cost)
    (vs_floor,) = [line for line in lines if " vs_floor " in line]
    assert vs_floor.endswith("no change beyond the threshold")
    assert not any("REGRESSION" in line for line in lines)


def test_at_different_speeds_a_change_relative_to_the_floor_is_still_called(
        tmp_path: Path) -> None:
    a, b = _floor_and_jwt_runs(tmp_path, jwt_factor=1.5 * 1.3)  # JWT 30 % dearer beyond
    lines, code = run_compare(_with_speed(a, "steady"), _with_speed(b, "slower"), 0.10)
    assert code == 1 and lines[0] == DIFFERENT_SPEEDS
    (vs_floor,) = [line for line in lines if " vs_floor " in line]
    assert vs_floor.endswith("REGRESSION")


def test_runs_at_the_same_speed_are_judged_as_before(tmp_path: Path) -> None:
    a, b = _floor_and_jwt_runs(tmp_path)
    lines, code = run_compare(_with_speed(a, "steady"), _with_speed(b, "steady"), 0.10)
    assert lines[0] == "machine speed: B ran 1.00x as fast as A (speed probe), within the " \
                       "probe's noise (10 %)"
    assert code == 1 and sum(line.endswith("REGRESSION") for line in lines) == 2
    (tmp_path / "a" / "speed.json").unlink()
    lines, code = run_compare(a, b, 0.10)
    assert lines[0] == "machine speed: probed in run B only; not compared" and code == 1


def _open_rows(config: str, closed_p99: list[float], open_p99: list[float],
               spec: str = "50%", short: tuple[int, ...] = (),
               disturbed: tuple[int, ...] = ()) -> list[dict[str, object]]:
    """A configuration's closed-loop windows and its open-model windows at spec, one of
    each per repeat; open windows whose index is in short fell short of the offered load,
    in disturbed another program took 40 % of the CPU."""
    rows: list[dict[str, object]] = []
    for repeat, (closed, offered) in enumerate(zip(closed_p99, open_p99, strict=True), 1):
        base = {"status": "ok", "endpoint": "GET /api/me", "config": config, "key": config,
                "mode": "jwt", "users": 20, "nodes": 1, "scenario": "read", "repeat": repeat,
                "server_cpu_us": 200.0, "rps": 2000.0, "foreign_cpu_share": 0.01,
                "bottleneck": "target", "p50_ms": 1.0, "service_p99_ms": 1.0,
                "schedule_lag_p99_ms": 0.5, "generator_note": ""}
        rows.append({**base, "cell": f"{repeat:03d}-{config}", "rate_spec": "",
                     "rate_offered": math.nan, "p99_ms": closed, "is_generator_short": False})
        rows.append({**base, "cell": f"{repeat:03d}-{config}-at", "key": f"{config}-at",
                     "rate_spec": spec, "rate_offered": 1000.0, "rate_achieved": 1000.0,
                     "p90_ms": offered, "p99_ms": 2 * offered,
                     "is_generator_short": repeat - 1 in short,
                     "bottleneck": "none",
                     "foreign_cpu_share": 0.4 if repeat - 1 in disturbed else 0.01})
    return rows


def _changes(before: list[dict[str, object]], after: list[dict[str, object]],
             speed: float | None = None,
             histograms: tuple[dict[str, HdrHistogram] | None, ...] = (None, None)
             ) -> dict[str, Change]:
    return {c.metric: c for c in compare_frames(pd.DataFrame(before), pd.DataFrame(after),
                                                speed, (histograms[0], histograms[1]))}


def test_latency_is_judged_at_equal_offered_load_where_both_runs_have_it() -> None:
    closed = [8.0, 8.4, 8.8, 8.2]
    before = _open_rows("jwt-x", closed, [2.0, 2.1, 2.2, 2.05])
    # The closed loop's p99 went up 80 %; at the same offered load p99 did not move.
    changes = _changes(before, _open_rows("jwt-x", [x * 1.8 for x in closed],
                                          [2.0, 2.1, 2.2, 2.05]))
    assert changes["p99_ms"].relative == pytest.approx(0.8) and changes["p99_ms"].is_separated
    assert changes["p99_ms"].not_comparable == SHOWN_EQUAL_LOAD
    at_load = changes["p90_load"]
    assert at_load.key == "jwt-x at 50%" and at_load.relative == 0
    assert not any(c.is_regression(0.10) for c in changes.values())
    # At equal offered load, p99 50 % worse in every window: a regression.
    worse = _changes(before, _open_rows("jwt-x", closed, [3.0, 3.15, 3.3, 3.075]))["p90_load"]
    assert worse.relative == pytest.approx(0.5) and worse.p_value == pytest.approx(2 / 70)
    assert worse.is_regression(0.10)
    (line,) = [x for x in format_changes([worse], 0.10) if "p90_load" in x]
    assert line.startswith("jwt-x at 50%") and line.endswith("REGRESSION")
    # p99 at equal load moved as much: shown beside it, not judged (p90 is).
    p99 = _changes(before, _open_rows("jwt-x", closed, [3.0, 3.15, 3.3, 3.075]))["p99_load"]
    assert p99.relative == pytest.approx(0.5) and p99.not_comparable == SHOWN_P99
    assert not p99.is_regression(0.10)


def test_a_window_whose_generator_stalled_is_left_out_of_equal_load() -> None:
    before = _open_rows("jwt-x", [8.0] * 4, [2.0, 2.1, 2.2, 2.05])
    after = [{**row, "schedule_lag_p99_ms": 9.9} if row["cell"] == "001-jwt-x-at" else row
             for row in _open_rows("jwt-x", [8.0] * 4, [6.0, 2.1, 2.2, 2.05])]
    at_load = _changes(before, after)["p90_load"]
    assert at_load.repeats == (4, 3) and at_load.after == pytest.approx(2.1)
    table = equal_load_table(pd.DataFrame(after))
    assert (table["stalled"].iloc[0], table["short"].iloc[0]) == (1, 1)
    assert table["notes"].iloc[0] == [
        "the load generator stalled: requests left 9.9 ms late (p99), over 3 times the "
        "configuration's other windows"]
    # Late by 4 ms: under STALL_MIN_MS, however much later than the others, it is kept.
    kept = [{**row, "schedule_lag_p99_ms": 4.0} if row["cell"] == "001-jwt-x-at" else row
            for row in _open_rows("jwt-x", [8.0] * 4, [2.0, 2.1, 2.2, 2.05])]
    assert _changes(before, kept)["p90_load"].repeats == (4, 4)


def test_windows_whose_generator_fell_short_are_left_out_of_equal_load() -> None:
    before = _open_rows("jwt-x", [8.0] * 4, [2.0, 2.1, 2.2, 2.05])
    # B's first window fell short (the generator's queue, 40 ms): left out, as in the report.
    after = _open_rows("jwt-x", [8.0] * 4, [40.0, 2.1, 2.2, 2.05], short=(0,))
    at_load = _changes(before, after)["p90_load"]
    assert at_load.repeats == (4, 3) and at_load.after == pytest.approx(2.1)
    assert not at_load.is_regression(0.10)
    # So is a window in which another program took 40 % of the CPU (its work, 30 ms).
    after = _open_rows("jwt-x", [8.0] * 4, [2.0, 30.0, 2.2, 2.05], disturbed=(1,))
    at_load = _changes(before, after)["p90_load"]
    assert at_load.repeats == (4, 3) and at_load.after == pytest.approx(2.05)
    assert not at_load.is_regression(0.10)


def _histograms(config: str, latencies_us: list[int]) -> dict[str, HdrHistogram]:
    """An open window's histogram per repeat: 1,000 requests at each latency."""
    found = {}
    for repeat, latency in enumerate(latencies_us, 1):
        histogram = HdrHistogram(1, 60_000_000, 3)
        histogram.record_value(latency, 1000)
        found[f"{repeat:03d}-{config}-at"] = histogram
    return found


def test_equal_load_with_histograms_judges_the_merged_p99_and_its_interval() -> None:
    before = _open_rows("jwt-x", [8.0] * 4, [2.0, 2.1, 2.2, 2.05])
    after = _open_rows("jwt-x", [8.0] * 4, [3.0, 3.15, 3.3, 3.075])
    # The histograms say otherwise than the windows' own p99s: 2 ms in every window of A,
    # 2 ms in three of B's and 9 ms in one. Merged, B's p99 is 9 ms, but its bootstrap
    # interval reaches down to A's 2 ms: not separated, no regression.
    at_load = _changes(before, after, histograms=(
        _histograms("jwt-x", [2000] * 4), _histograms("jwt-x", [2000, 2000, 9000, 2000]))
    )["p90_load"]
    assert at_load.before == pytest.approx(2.0, rel=1e-3)
    assert at_load.after == pytest.approx(9.0, rel=1e-3)
    assert not at_load.is_separated and not at_load.is_regression(0.10)
    # Every window of B at 3 ms: the intervals [2, 2] and [3, 3] are apart.
    at_load = _changes(before, after, histograms=(
        _histograms("jwt-x", [2000] * 4), _histograms("jwt-x", [3000] * 4)))["p90_load"]
    assert at_load.after == pytest.approx(3.0, rel=1e-3) and at_load.is_regression(0.10)


def test_closed_loop_latency_is_judged_without_a_common_rate() -> None:
    before = _open_rows("jwt-x", [8.0, 8.4, 8.8, 8.2], [2.0] * 4, spec="50%")
    after = _open_rows("jwt-x", [14.4, 15.1, 15.8, 14.8], [2.0] * 4, spec="80%")
    changes = _changes(before, after)
    assert "p90_load" not in changes
    assert changes["p99_ms"].not_comparable == "" and changes["p99_ms"].is_regression(0.10)


def test_latency_at_equal_load_is_shown_only_across_machine_speeds() -> None:
    before = _open_rows("jwt-x", [8.0] * 4, [2.0, 2.1, 2.2, 2.05])
    after = _open_rows("jwt-x", [8.0] * 4, [3.0, 3.15, 3.3, 3.075])
    at_load = _changes(before, after, speed=0.66)["p90_load"]
    assert at_load.not_comparable == SHOWN_SPEED and not at_load.is_regression(0.10)
    assert _changes(before, after, speed=1.02)["p90_load"].is_regression(0.10)
def test_the_command_prints_the_speed_line_and_exits_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _floor_and_jwt_runs(tmp_path)
    assert main(["compare", str(a), str(b)]) == 1  # no speed probe: p99 +75 % is called
    capsys.readouterr()
    assert main(["compare", str(_with_speed(a, "steady")), str(_with_speed(b, "slower"))]) == 0
    assert capsys.readouterr().out.splitlines()[0] == DIFFERENT_SPEEDS
