"""Per-configuration summaries: histograms merged over repeats, req/s and its spread."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.load import load_run
from analysis.summaries import config_table
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
