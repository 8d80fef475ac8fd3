"""The report's data from the checked-in fixture run: costs, warnings, the caption."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.cost.table import interval, sanity_warnings
from analysis.report.data import Report, build_report, method_warnings
from tests.analysis.fixtures import ROOT


@pytest.fixture(scope="module")
def tiny() -> Report:
    """The tiny run's report data, built once (loading histograms is the slow part)."""
    return build_report(ROOT / "tiny")


def test_costs_are_per_configuration(tiny: Report) -> None:
    costs = tiny.costs.set_index("key")
    assert costs.loc["jwt-memory-HS256-read-u10-n2", "server_cpu_us"] == pytest.approx(4500.0)
    assert interval(costs.loc["session-memory-read-u10-n1"], "floor_ratio").median == \
        pytest.approx(2500 / 4000)


def test_a_failed_cell_is_named_in_the_warnings(tiny: Report) -> None:
    warnings = method_warnings(tiny.frame)
    assert any("006-hybrid" in w and "not measured" in w for w in warnings)
    assert tiny.warnings == sanity_warnings(tiny.costs) + warnings
    assert tiny.caption.startswith("run tiny · suite tiny · 10 users · 10.0 s measured per "
                                   "window · 1 repeat · 2x Fixture CPU")


def test_req_per_s_that_varies_over_repeats_is_warned_about() -> None:
    def row(cell: str, rps: float) -> dict[str, object]:
        return {"cell": cell, "key": "jwt", "status": "ok", "endpoint": "GET /api/me",
                "rps": rps, "duration": 10.0, "measured_seconds": 10.0}

    steady = pd.DataFrame([row("001-jwt-r1", 100.0), row("002-jwt-r2", 105.0)])
    assert method_warnings(steady) == []
    noisy = pd.DataFrame([row("001-jwt-r1", 100.0), row("002-jwt-r2", 130.0)])
    assert method_warnings(noisy) == ["jwt: req/s varies by 18% over 2 repeats — too noisy to "
                                      "trust small differences"]
