"""The break-even points of "When the answer changes": each figure and what it rests on.

Synthetic frames give figures worked out by hand; tests/fixtures/runs/quick-redis (a real
quick run with Redis cut to two repeats of five configurations: JWT HS256 and sessions in
Redis closed-loop and at half the floor's capacity, JWT with a Redis blocklist closed-loop,
and its store-ceiling.json) checks the store's points against its raw files.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.data.endpoints import ME
from analysis.data.load import load_run
from analysis.report.breakeven import TITLE, break_evens, breakeven_section
from analysis.report.writer import write_report
from analysis.verdict.breakeven import (
    ALGORITHM,
    DISTANCE,
    MICRO,
    OFFBOX,
    BreakEven,
    algorithm,
    algorithm_cells,
    algorithm_micro,
    distance,
    distance_idle,
    distance_measured,
)
from analysis.verdict.breakeven_store import CEILING, blocklist_rate, nodes_to_cap
from tests.analysis.fixtures import ROOT

QUICK = ROOT / "quick-redis"
SESSION = {"mode": "session", "store": "redis", "revocation": "none"}
JWT = {"mode": "jwt", "store": "memory", "revocation": "none", "alg": "HS256"}


def _window(cell: str, config: str, rate: float | None = None, **figures: Any) -> dict[str, Any]:
    """One hot window of a tidy frame, with what the break-evens read."""
    row: dict[str, Any] = {
        "cell": cell, "key": config, "config": config, "status": "ok", "endpoint": ME,
        "scenario": "read", "users": 20, "nodes": 1, "alg": "HS256", "lib": "pyjwt",
        "store_rtt_ms": 0.0, "rate_spec": "" if rate is None else "50%",
        "rate_offered": math.nan if rate is None else rate, "is_generator_short": False,
        "auth_cpu_mean_us": math.nan, "store_cpu_us": math.nan, "store_rtt_us": math.nan,
        "target_cpu_us": math.nan, "p50_ms": math.nan, "store_wall_p50_us": math.nan,
        "store_ops_per_request": math.nan}
    return {**row, **figures}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _one(points: list[BreakEven]) -> BreakEven:
    assert len(points) == 1, points
    return points[0]


def test_idle_distance_is_the_verify_cpu_minus_the_idle_lookup() -> None:
    frame = _frame([
        *(_window(f"j{i}", "jwt-memory", **JWT, auth_cpu_mean_us=cpu)
          for i, cpu in enumerate((70.0, 76.0, 80.0))),
        *(_window(f"s{i}", "session-redis", **SESSION, store_rtt_us=43.0) for i in range(3))])
    point = _one(distance_idle(frame))
    assert point.value == pytest.approx(33.0)
    assert point.unit == "µs"
    assert "a store 33 µs further away" in point.point and "(27 to 37 over" in point.point
    assert "idle store" in point.basis
    assert point.rests_on == (
        "JWT HS256's auth step: 76.0 (70.0 to 80.0) µs CPU per request (median and range "
        "over 3 closed-loop windows)",
        "session (redis)'s lookup on an idle store: 43.0 µs round trip, timed by the node "
        "before its windows")


def test_idle_distance_already_when_the_lookup_takes_longer() -> None:
    frame = _frame([_window("j", "jwt-memory", **JWT, auth_cpu_mean_us=30.0),
                    _window("s", "session-redis", **SESSION, store_rtt_us=43.0)])
    point = _one(distance_idle(frame))
    assert point.value == 0.0
    assert point.point.startswith("already on this run's store")


def _open(p50s: dict[float, float], control: float) -> pd.DataFrame:
    rows = [_window(f"s{r}", f"session-redis-rtt{r:g}ms", 1000.0, **SESSION, store_rtt_ms=r,
                    p50_ms=p50, store_wall_p50_us=200.0) for r, p50 in p50s.items()]
    return _frame([*rows, _window("j", "jwt-memory", 1000.0, **JWT, p50_ms=control)])


def test_measured_distance_interpolates_between_the_round_trips() -> None:
    point = _one(distance_measured(_open({0.0: 1.0, 0.5: 1.5, 1.0: 2.0}, control=1.2)))
    # The line from (0, 1.0) to (0.5, 1.5) crosses 1.2 at 0.2 ms.
    assert point.value == pytest.approx(0.2)
    assert point.point.startswith("about 0.20 ms added")
    assert point.basis.startswith("measured: p50 at equal offered load (1,000 req/s")
    assert "session (redis) p50 with 0.5 ms added: 1.50 ms" in point.rests_on
    assert "JWT HS256 (no store call) p50: 1.20 ms over 1 windows" in point.rests_on


def test_measured_distance_already_and_not_reached() -> None:
    already = _one(distance_measured(_open({0.0: 1.7}, control=1.1)))
    assert already.value == 0.0
    assert already.point.startswith("already with the store direct")
    below = distance_measured(_open({0.0: 1.0}, control=1.1))
    assert [p.value for p in below] == [None, None]
    assert below[0].point.startswith("not reached with 0 ms added")
    assert not below[1].is_measured and below[1].rests_on == (OFFBOX,)


def test_distance_without_a_shared_store_names_the_runs() -> None:
    frame = _frame([_window("j", "jwt-memory", **JWT, auth_cpu_mean_us=30.0)])
    point = _one(distance(frame))
    assert not point.is_measured and point.question == DISTANCE
    assert OFFBOX in point.rests_on[0]


def _micro(verifies: dict[str, float], gets: dict[str, float]) -> pd.DataFrame:
    rows = [{"group": "jwt", "name": f"{alg} pyjwt verify", "median_us": us, "stdev_us": 1.0}
            for alg, us in verifies.items()]
    rows += [{"group": "jwt", "name": "HS256 pyjwt sign", "median_us": 500.0, "stdev_us": 1.0}]
    rows += [{"group": "store", "name": f"{store} get", "median_us": us, "stdev_us": 2.0}
             for store, us in gets.items()]
    return pd.DataFrame(rows)


def test_micro_algorithm_is_the_cheapest_verify_above_each_lookup() -> None:
    micro = _micro({"ES256": 90.0, "HS256": 20.0, "RS256": 40.0},
                   {"memory": 0.2, "redis tcp": 50.0, "postgres": 10.0})
    redis, postgres = algorithm_micro(micro)
    assert redis.subject == "redis tcp get vs pyjwt verify"
    assert redis.value == 90.0
    assert redis.point == "ES256 (90.0 µs against the lookup's 50.0 µs); RS256 (40.0 µs) costs less"
    assert redis.rests_on[1] == "pyjwt verify, µs: HS256 20.0 ± 1.0, RS256 40.0 ± 1.0, " \
                                "ES256 90.0 ± 1.0"
    assert postgres.value == 20.0 and postgres.point.startswith("HS256 already")
    never = _one(algorithm_micro(_micro({"HS256": 20.0}, {"redis tcp": 50.0})))
    assert never.value is None and never.point.startswith("not HS256, the only one measured")


def test_micro_crossing_within_the_spread_is_said() -> None:
    point = _one(algorithm_micro(_micro({"HS256": 20.0, "RS256": 50.5}, {"redis tcp": 50.0})))
    assert point.point.endswith("within a standard deviation of the lookup: RS256")


def test_cells_algorithm_sets_each_jwt_against_session_auth_plus_store_cpu() -> None:
    frame = _frame([
        _window("s1", "session-redis", **SESSION, auth_cpu_mean_us=15.0, store_cpu_us=20.0),
        _window("s2", "session-redis", **SESSION, auth_cpu_mean_us=17.0, store_cpu_us=24.0),
        _window("h", "jwt-memory-HS256", **JWT, auth_cpu_mean_us=30.0),
        _window("e", "jwt-memory-ES256", **{**JWT, "alg": "ES256"}, auth_cpu_mean_us=120.0)])
    point = _one(algorithm_cells(frame))
    assert point.value == 120.0
    assert point.point.startswith("JWT ES256 (120.0 µs against the lookup's 38.0 µs)")
    assert point.rests_on[0] == ("session (redis): auth step 16.0 (15.0 to 17.0) µs on the "
                                 "target + the store's 22.0 (20.0 to 24.0) µs = 38.0 (35.0 "
                                 "to 41.0) µs")


def test_algorithm_names_the_micro_tier_when_it_did_not_run(tmp_path: Path) -> None:
    points = algorithm(_frame([_window("j", "jwt-memory", **JWT, auth_cpu_mean_us=30.0)]),
                       tmp_path)
    assert [(p.question, p.is_measured, p.rests_on) for p in points] == [
        (ALGORITHM, False, (MICRO,))]


def test_micro_json_in_the_run_gives_the_micro_point(tmp_path: Path) -> None:
    results = _micro({"HS256": 20.0, "ES256": 90.0}, {"redis tcp": 50.0}).assign(
        samples=15, loops=1, extra=[{}] * 4)
    (tmp_path / "micro.json").write_text(json.dumps(
        {"format": "authbench-micro/2", "results": results.to_dict("records")}))
    point = algorithm(_frame([]), tmp_path)[0]
    assert point.is_measured and point.value == 90.0


@pytest.fixture(scope="module")
def quick() -> pd.DataFrame:
    return load_run(QUICK)


def _ceiling(operation: str) -> float:
    data = json.loads((QUICK / "store-ceiling.json").read_text())
    return float(data["stores"]["redis"]["operations"][operation]["ops_per_s_median"])


def test_nodes_to_cap_sessions_from_the_runs_files(quick: pd.DataFrame) -> None:
    closed = quick[(quick["mode"] == "session") & (quick["rate_spec"] == "")
                   & (quick["endpoint"] == ME)]
    node_rps = 1e6 / closed["target_cpu_us"].median()
    store_rps = _ceiling("session-get") / closed["store_ops_per_request"].median()
    point = _one(nodes_to_cap(quick, QUICK))
    assert point.value == math.ceil(store_rps / node_rps) == 26
    assert point.rests_on[1].startswith("Redis's ceiling for session-get (`GET`): 119,294 "
                                        "ops/s (116,960 to 121,628)")
    assert f"one node: {node_rps:,.0f} req/s" in point.rests_on[0]


def test_blocklist_rate_is_the_ceiling_over_calls_per_request(quick: pd.DataFrame) -> None:
    closed = quick[(quick["revocation"] == "blocklist") & (quick["endpoint"] == ME)]
    calls = closed["store_ops_per_request"].median()
    point = _one(blocklist_rate(quick, QUICK))
    assert point.value == pytest.approx(_ceiling("revocation-check") / calls)
    assert point.point.startswith(f"{point.value:,.0f} req/s (")
    assert point.rests_on[0].startswith("Redis's ceiling for revocation-check (`MGET`): "
                                        "124,402 ops/s")
    assert point.rests_on[1].startswith(f"{calls:.3f} (")


def test_store_points_without_the_ceiling_name_the_command(quick: pd.DataFrame,
                                                           tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(QUICK, run)
    (run / "store-ceiling.json").unlink()
    for point in (*nodes_to_cap(quick, run), *blocklist_rate(quick, run)):
        assert not point.is_measured and point.rests_on == (CEILING,)


def test_section_gives_every_question_with_its_figures(quick: pd.DataFrame) -> None:
    lines, charts = breakeven_section(quick, QUICK, "caption")
    assert lines[0] == TITLE and charts == []
    assert [line for line in lines if line.startswith("### ")] == [
        "### The store's distance: from how far away a session's lookup adds more latency "
        "than a JWT verify",
        "### Nodes: from how many one store caps sessions",
        "### The algorithm: from which one a JWT verify costs more CPU than a store lookup",
        "### The request rate: from which a blocklist's store is the bottleneck"]
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| between")]
    assert len(rows) == len([p for p in break_evens(quick, QUICK) if p.is_measured]) == 5
    assert all(line.count(" | ") == 3 for line in rows)
    assert f"- Not measured in this run: each algorithm's verify against a store lookup, " \
           f"in-process. {MICRO}." in lines


def test_section_is_empty_when_no_point_can_be_computed() -> None:
    assert breakeven_section(pd.DataFrame(), None, "") == ([], [])
    memory_only = _frame([_window("j", "jwt-memory", **JWT, auth_cpu_mean_us=30.0)])
    assert breakeven_section(memory_only, None, "") == ([], [])


def test_report_places_the_section_after_the_answer(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(QUICK, run)
    write_report(run)
    headings = [line for line in (run / "report.md").read_text().splitlines()
                if line.startswith("## ")]
    at = headings.index(TITLE)
    assert headings.index("## The article's table, re-checked") < at
    assert at < headings.index("## Configurations")
    assert "<h2>When the answer changes</h2>" in (run / "report.html").read_text()


def test_the_rate_a_break_even_was_measured_at_names_what_it_is_a_share_of() -> None:
    from analysis.verdict.breakeven import _share
    assert _share("40%dearest") == "40 % of the dearest configuration's capacity"
    assert _share("50%") == "50 % of the floor's capacity"
    assert _share("500") == "a fixed rate"
