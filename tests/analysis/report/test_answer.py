"""The report's answer: cost table, latency, and a choice table for what the run varied."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.cost.table import cost_table
from analysis.data.load import load_run
from analysis.report.answer import ASYMMETRIC_NEEDS, SHARED_NEEDS, answer_lines
from tests.analysis.fixtures import Config, write_run

NONE = Config("none-read-u10-n1", {"mode": "none"}, counts=(1000, 1000),
              target_us=(2000.0, 2200.0), generator_s=9.5, latency_us=1000)
AUTH_CPU_US = 50  # the auth step's own CPU in every window of the modes that authenticate


def answer(run: Path) -> list[str]:
    frame = load_run(run)
    return answer_lines(cost_table(frame), frame.drop_duplicates("cell"))


@pytest.fixture(scope="module")
def algorithms(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """2 repeats of the floor, HS256 (generator-bound) and ES256 (target-bound)."""
    run = write_run(tmp_path_factory.mktemp("runs") / "algorithms", [
        NONE,
        Config("jwt-memory-HS256-read-u10-n1", {"mode": "jwt"}, counts=(1000, 1000),
               target_us=(3000.0, 3100.0), generator_s=9.5, credential_bytes=180,
               sign_us=(8.0, 9.0), auth_cpu_us=AUTH_CPU_US),
        # 1,800 and 1,700 requests at 5,000 and 5,300 µs: the target 90 % busy.
        Config("jwt-memory-ES256-read-u10-n1", {"mode": "jwt", "alg": "ES256"},
               counts=(1800, 1700), target_us=(5000.0, 5300.0), generator_s=4.0,
               credential_bytes=220, sign_us=(40.0, 42.0), auth_cpu_us=AUTH_CPU_US),
    ])
    return answer(run)


def test_cost_order_and_coverage(algorithms: list[str]) -> None:
    assert ("Cheapest to dearest: none-read-u10-n1 < jwt-memory-HS256-read-u10-n1 < "
            "jwt-memory-ES256-read-u10-n1") in algorithms
    assert any("median over 2 repeats, in brackets the range over them (it holds the true "
               "median with probability 50 %)" in line for line in algorithms)
    # Cost, target µs, (no store), the floor's cost over this one's per repeat:
    # 2,000 / 5,000 and 2,200 / 5,300; 10^6 / 5,150 req/s per core; limited by the target.
    row = next(line for line in algorithms if line.startswith("| jwt-memory-ES256"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:3] == ["5,150.0 (5,000.0 to 5,300.0)"] * 2
    assert cells[4:8] == ["0.41 (0.40 to 0.42)", "194", "50.0", "-"]
    assert cells[8] == "target"


def test_algorithm_choice_table(algorithms: list[str]) -> None:
    at = algorithms.index("### Algorithm choice")
    assert algorithms[at + 2].startswith("| configuration | algorithm | cost µs/request ")
    rows = algorithms[at + 4:at + 6]  # cheapest first
    assert rows == [
        "| jwt-memory-HS256-read-u10-n1 | HS256 | 3,050.0 (3,000.0 to 3,100.0) | "
        "0.69 (0.67 to 0.71) | 3.00 (3.00 to 3.00) | 3.00 (3.00 to 3.00) | 180 | 8.5 | "
        f"{SHARED_NEEDS} |",
        "| jwt-memory-ES256-read-u10-n1 | ES256 | 5,150.0 (5,000.0 to 5,300.0) | "
        "0.41 (0.40 to 0.42) | 3.00 (3.00 to 3.00) | 3.00 (3.00 to 3.00) | 220 | 41.0 | "
        f"{ASYMMETRIC_NEEDS} |",
    ]
    assert "a shared secret" in SHARED_NEEDS and "a public key" in ASYMMETRIC_NEEDS
    assert algorithms[at + 6] == ""
    assert "### Store choice" not in algorithms  # every configuration in memory


def test_req_per_second_is_shown_only_where_the_target_was_the_bottleneck(
        algorithms: list[str]) -> None:
    assert ("| jwt-memory-ES256-read-u10-n1 | 10 | 3.00 (3.00 to 3.00) | 3.00 (3.00 to 3.00) "
            "| 175 (170 to 180) | target |") in algorithms
    assert ("| jwt-memory-HS256-read-u10-n1 | 10 | 3.00 (3.00 to 3.00) | 3.00 (3.00 to 3.00) "
            "| (100 (100 to 100): not the target's capacity) | load generator |") in algorithms
    assert ("| none-read-u10-n1 | 10 | 1.00 (1.00 to 1.00) | 1.00 (1.00 to 1.00) "
            "| (100 (100 to 100): not the target's capacity) | load generator |") in algorithms


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """2 repeats of the floor and of sessions in memory and in Redis."""
    run = write_run(tmp_path_factory.mktemp("runs") / "stores", [
        NONE,
        Config("session-memory-read-u10-n1", {"mode": "session"}, counts=(1000, 1000),
               target_us=(3000.0, 3200.0), generator_s=9.0, credential_bytes=49,
               auth_cpu_us=AUTH_CPU_US),
        Config("session-redis-read-u10-n1", {"mode": "session", "store": "redis"},
               counts=(1000, 1000), target_us=(4000.0, 4200.0), store_us=(1000.0, 1100.0),
               generator_s=9.0, credential_bytes=49, store_rtt_us=45.0,
               auth_cpu_us=AUTH_CPU_US),
    ])
    return answer(run)


def test_store_choice_table(stores: list[str]) -> None:
    at = stores.index("### Store choice")
    redis = stores[at + 5]
    assert redis == ("| session-redis-read-u10-n1 | redis | 5,150.0 (5,000.0 to 5,300.0) | "
                     "4,100.0 (4,000.0 to 4,200.0) | 1,050.0 (1,000.0 to 1,100.0) | 45.0 | "
                     "3.00 (3.00 to 3.00) | load generator |")
    memory = stores[at + 4]
    assert memory.startswith("| session-memory-read-u10-n1 | memory | 3,100.0 (3,000.0 to "
                             "3,200.0) | 3,100.0 (3,000.0 to 3,200.0) | ")
    assert "### Algorithm choice" not in stores
    assert ("Cheapest to dearest: none-read-u10-n1 < session-memory-read-u10-n1 < "
            "session-redis-read-u10-n1") in stores
    # The cost table: the store's CPU is part of the cost; its idle round trip; the
    # auth step's own CPU (50 µs in every window).
    row = next(line for line in stores if line.startswith("| session-redis-read-u10-n1 | 5,150"))
    assert row.endswith("| 50.0 | 45.0 | load generator |")


def test_a_configuration_without_a_store_shows_no_store_cost(stores: list[str]) -> None:
    memory = next(line for line in stores
                  if line.startswith("| session-memory-read-u10-n1 | memory |"))
    assert memory.split(" | ")[4] == "-"


def test_an_empty_run_says_nothing_was_measured() -> None:
    assert answer_lines(pd.DataFrame(), pd.DataFrame()) == ["No configuration was measured."]


def test_algorithm_choice_gives_latency_at_equal_offered_load(
        tmp_path: Path) -> None:
    run = write_run(tmp_path / "algorithms", [
        NONE,
        Config("jwt-memory-HS256-read-u10-n1", {"mode": "jwt"}, counts=(1000, 1000),
               target_us=(3000.0, 3100.0), generator_s=9.5, credential_bytes=180),
        Config("jwt-memory-ES256-read-u10-n1", {"mode": "jwt", "alg": "ES256"},
               counts=(1800, 1700), target_us=(5000.0, 5300.0), generator_s=4.0,
               credential_bytes=220),
    ])
    frame = load_run(run)

    def at_rate(config: str, p90: tuple[float, float, float]) -> dict[str, object]:
        return {"config": config, "mode": "jwt", "rate_spec": "50%", "repeats": 2,
                "short": 0, "notes": [], "rate_offered": 2846.0, "rate_achieved": 2800.0,
                "p50_ms": 1.0, "p50_ms_low": 0.9, "p50_ms_high": 1.1,
                "p90_ms": p90[0], "p90_ms_low": p90[1], "p90_ms_high": p90[2],
                "p99_ms": 2 * p90[0], "p99_ms_low": 2 * p90[1], "p99_ms_high": 2 * p90[2]}

    equal_load = pd.DataFrame([at_rate("jwt-memory-HS256-read-u10-n1", (4.0, 3.5, 4.5)),
                               at_rate("jwt-memory-ES256-read-u10-n1", (9.0, 8.0, 12.0))])
    lines = answer_lines(cost_table(frame), frame.drop_duplicates("cell"), equal_load)
    at = lines.index("### Algorithm choice")
    assert "| p90 ms at 2,846 req/s offered (fixed rate) |" in lines[at + 2]
    assert lines[at + 3].count("|") == lines[at + 2].count("|")
    assert lines[at + 4].startswith("| jwt-memory-HS256-read-u10-n1 | HS256 | ")
    assert "| 4.00 (3.50 to 4.50) | 180 |" in lines[at + 4]
    assert "| 9.00 (8.00 to 12.00) | 220 |" in lines[at + 5]
