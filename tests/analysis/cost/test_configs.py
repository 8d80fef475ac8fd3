"""Per-configuration summaries: histograms merged over repeats, req/s and its spread."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.cost.configs import config_table
from analysis.cost.table import answer_order, cost_table
from analysis.data.load import load_run
from analysis.report.summary import cell_rows
from tests.analysis.fixtures import ROOT


def test_config_table_merges_repeats() -> None:
    run = ROOT / "before"
    table = config_table(run, load_run(run)).set_index("key")
    row = table.loc["jwt-memory-HS256-read-u10-n1"]
    assert row["repeats"] == 4
    assert row["requests"] == 1000 + 1020 + 980 + 1010  # every repeat's histogram, added
    assert row["rps"] == pytest.approx(100.5)
    rates = pd.Series([100.0, 102.0, 98.0, 101.0])
    assert row["rps_spread"] == pytest.approx(rates.std() / rates.mean())
    assert row["p50_ms"] == pytest.approx(3.0, rel=1e-3)
    assert row["auth_p50_ms"] == pytest.approx(0.06, rel=1e-3)


def test_config_table_takes_the_answers_cost_and_order() -> None:
    run = ROOT / "tiny"
    frame = load_run(run)
    costs = cost_table(frame)
    table = config_table(run, frame)
    # The answer's order (group by group, cheapest first), so the report's tables agree.
    assert list(table["key"]) == answer_order(costs)
    row = table.set_index("key").loc["session-redis-read-u10-n1"]
    # Cost is target + store (1,500 + 4,400 µs), as in the answer; never the target alone.
    assert row["cost_us"] == pytest.approx(5900.0)
    assert row["cpu_ms_per_request"] == pytest.approx(5.9)
    assert row["window"] == "closed loop" and row["left_out"] == 0


def test_a_cells_cpu_per_request_is_its_cost_target_and_store() -> None:
    rows = {row["cell"]: row for row in cell_rows(load_run(ROOT / "tiny"))}
    redis = next(row for cell, row in rows.items() if "session-redis" in cell)
    assert redis["cpu_ms_per_request"] == pytest.approx(5.9)  # 1.5 target + 4.4 store
