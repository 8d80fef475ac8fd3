"""recommend: the cheapest configuration that meets a target, ties together, never none."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.cost.recommend import format_recommendation, recommend
from analysis.data.load import load_run
from authbench.cli import main
from tests.analysis.fixtures import ROOT, Config, write_run

TINY = ROOT / "tiny"


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    return load_run(TINY)


def test_recommend_on_the_tiny_run(tiny: pd.DataFrame) -> None:
    candidates = recommend(tiny, p99_ms=2.5, rps=85)
    by_key = {c.key: c for c in candidates}
    # none (p99 0.99 ms, 2,500 µs) would meet it, but no auth is no answer.
    assert "none-read-u10-n1" not in by_key
    # Session in memory on 1 node: p99 2 ms; not target-bound, so its capacity is
    # estimated, 10^6 / 4,000 µs = 250 req/s. On 2 nodes half its requests failed;
    # JWT's p99 of 3 ms is over 2.5, and on 1 node it served 80 req/s target-bound.
    assert [c.key for c in candidates if c.is_meeting] == ["session-memory-read-u10-n1",
                                                           "session-redis-read-u10-n1"]
    session = by_key["session-memory-read-u10-n1"]
    assert session.is_estimated and session.rps == pytest.approx(250.0)
    assert session.headroom == pytest.approx(1.25)  # min(2.5 / 2.0, 250 / 85)
    jwt = by_key["jwt-memory-HS256-read-u10-n1"]
    assert not jwt.is_estimated and jwt.rps == pytest.approx(80.0)
    lines = format_recommendation(candidates, 2.5, 85)
    assert lines[1] == ("recommended: session-memory-read-u10-n1 — the cheapest per request "
                        "that meets it")
    assert lines[2] == ("  session-memory-read-u10-n1: 4000.0 µs/request (4000.0 to 4000.0), "
                        "p99 2.00 ms, 250 req/s (estimated), headroom x1.25")
    # Redis costs more (5,900 µs): not a tie, so it only "also meets"; headroom
    # min(2.5 / 2.2, (10^6 / 1,500) / 85).
    assert lines[3] == ("  also meets: session-redis-read-u10-n1 (5900.0 µs/request, headroom "
                        "x1.14)")
    assert "  does not meet: session-memory-read-u10-n2 — 50.0% of requests failed" in lines
    assert ("  does not meet: jwt-memory-HS256-read-u10-n1 — p99 3.00 ms is over 2.5 ms; "
            "80 req/s is under 85") in lines


def test_a_store_bound_configuration_is_not_credited_with_the_targets_capacity(
        tiny: pd.DataFrame) -> None:
    by_key = {c.key: c for c in recommend(tiny, p99_ms=2.5, rps=500)}
    redis = by_key["session-redis-read-u10-n1"]
    # Redis spent 4,400 µs of its one thread per request: 227 req/s at most.
    assert redis.rps <= 1e6 / 4400
    assert not redis.is_meeting


def test_recommend_command_when_nothing_meets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(TINY), "--p99-ms", "0.1", "--rps", "10"]) == 1
    assert "nothing measured in this run meets the target" in capsys.readouterr().out


def config(key: str, costs: tuple[float, ...], counts: int = 1000) -> Config:
    """Three windows limited by the load generator, 3 ms latency."""
    mode = key.split("-")[0]
    return Config(key, {"mode": mode}, counts=(counts,) * len(costs), target_us=costs,
                  generator_s=9.5)


def test_the_cheapest_is_recommended_and_its_ties_named(tmp_path: Path) -> None:
    run = write_run(tmp_path / "ties", [
        config("none-read-u10-n1", (50.0, 55.0, 60.0)),  # cheapest, never recommended
        config("session-memory-read-u10-n1", (100.0, 110.0, 120.0)),
        config("jwt-memory-HS256-read-u10-n1", (115.0, 118.0, 125.0)),  # overlaps: a tie
        config("hybrid-memory-HS256-read-u10-n1", (200.0, 210.0, 220.0)),
    ])
    candidates = recommend(load_run(run), p99_ms=5.0, rps=1000)
    assert [c.key for c in candidates] == ["session-memory-read-u10-n1",
                                           "jwt-memory-HS256-read-u10-n1",
                                           "hybrid-memory-HS256-read-u10-n1"]
    assert all(c.is_meeting and c.is_estimated for c in candidates)
    lines = format_recommendation(candidates, 5.0, 1000)
    # The answer is the cheapest median, so two runs whose ranges move still agree on it;
    # what the run cannot tell apart from it is named, not promoted.
    assert lines[1] == ("recommended: session-memory-read-u10-n1 — the cheapest per request "
                        "that meets it")
    assert lines[2] == ("  this run cannot tell it apart in cost from: "
                        "jwt-memory-HS256-read-u10-n1")
    assert lines[3].startswith("  session-memory-read-u10-n1: 110.0 µs/request (100.0 to "
                               "120.0)")
    assert lines[4].startswith("  jwt-memory-HS256-read-u10-n1: 118.0 µs/request (115.0 to "
                               "125.0), p99 3.00 ms, 8,475 req/s (estimated)")
    assert lines[5].startswith("  also meets: hybrid-memory-HS256-read-u10-n1 (210.0 µs/request")
    assert len(lines) == 6
    assert not any("none-read" in line for line in lines)


def test_capacity_is_measured_where_target_bound_and_estimated_elsewhere(
        tmp_path: Path) -> None:
    run = write_run(tmp_path / "capacity", [
        # Target-bound (90 % of its core): 100 req/s is what the target could do.
        Config("jwt-memory-HS256-read-u10-n1", {"mode": "jwt"}, counts=(1000,) * 3,
               target_us=(9000.0, 9000.0, 9000.0)),
        # Generator-bound at 100 req/s, but 200 µs of CPU per request: 5,000 per core.
        config("session-memory-read-u10-n1", (190.0, 200.0, 210.0)),
        # Two nodes (on one pinned core): 10^6 / 400 µs per node, x 2.
        Config("session-memory-read-u10-n2", {"mode": "session", "nodes": 2},
               counts=(1000,) * 3, target_us=(400.0, 400.0, 400.0), generator_s=9.5),
    ])
    by_key = {c.key: c for c in recommend(load_run(run), p99_ms=5.0, rps=4000)}
    jwt = by_key["jwt-memory-HS256-read-u10-n1"]
    assert not jwt.is_estimated and jwt.rps == pytest.approx(100.0)
    assert jwt.reasons == ("100 req/s is under 4,000",)
    session = by_key["session-memory-read-u10-n1"]
    assert session.is_estimated and session.rps == pytest.approx(5000.0)
    assert session.is_meeting and session.headroom == pytest.approx(5000 / 4000)
    two = by_key["session-memory-read-u10-n2"]
    assert two.is_estimated and two.rps == pytest.approx(5000.0)
    lines = format_recommendation(list(by_key.values()), 5.0, 4000)
    assert "  does not meet: jwt-memory-HS256-read-u10-n1 — 100 req/s is under 4,000" in lines


def test_each_group_of_the_same_users_and_nodes_gets_its_own_recommendation(
        tmp_path: Path) -> None:
    run = write_run(tmp_path / "groups", [
        config("session-memory-read-u10-n1", (190.0, 200.0, 210.0)),
        config("jwt-memory-HS256-read-u10-n1", (205.0, 215.0, 225.0)),  # a tie on 1 node
        # Two nodes: dearer per request, but not comparable with one node's costs, nor a tie.
        Config("session-memory-read-u10-n2", {"mode": "session", "nodes": 2},
               counts=(1000,) * 3, target_us=(208.0, 208.0, 208.0), generator_s=9.5),
    ])
    candidates = recommend(load_run(run), p99_ms=5.0, rps=1000)
    lines = format_recommendation(candidates, 5.0, 1000)
    assert lines[1] == ("recommended, read scenario, 10 users, 1 node: session-memory-read-u10-n1 "
                        "— the cheapest per request that meets it")
    assert lines[2] == "  this run cannot tell it apart in cost from: jwt-memory-HS256-read-u10-n1"
    assert ("recommended, read scenario, 10 users, 2 nodes: session-memory-read-u10-n2 — the "
            "cheapest per request that meets it") in lines
    assert not any("also meets" in line for line in lines)
