"""The revocation section of the report, from a small revocation.json written here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis.data.formats import UnknownFormat
from analysis.revocation.storage import (
    growth_table,
    load_revocation,
    logout_all_table,
    plot_logout_all,
    plot_storage_growth,
    revocation_storage_section,
)

STORES = ("memory", "redis", "postgres")
PER_ENTRY = {"memory": 230.0, "redis": 100.0, "postgres": 130.0}


def _growth() -> list[dict[str, Any]]:
    return [{"store": store, "entries": n, "inserted": n, "bytes": int(n * PER_ENTRY[store]),
             "bytes_per_entry": PER_ENTRY[store], "bytes_method": f"{store} method",
             "insert_seconds": n / 1e6, "check_present_us": 20.0, "check_absent_us": 18.0}
            for store in STORES for n in (1_000, 10_000)]


def _logout_all() -> list[dict[str, Any]]:
    rows = []
    for store in STORES:
        for k, ms in ((1, 0.2), (100, 0.9)):
            rows.append({"store": store, "op": "delete_user_sessions", "k": k, "median_ms": ms,
                         "stdev_ms": 0.01, "reps": 20, "removed": k})
        rows.append({"store": store, "op": "set_user_cutoff", "k": None, "median_ms": 0.15,
                     "stdev_ms": 0.01, "reps": 20, "removed": None})
    return rows


RESULT: dict[str, Any] = {
    "format": "authbench-revocation-storage/2", "started": "2025-01-01T00:00:00+00:00",
    "ended": "2025-01-01T00:01:00+00:00", "config": {}, "machine": {},
    "notes": ["Redis memory is per server."],
    "growth": _growth(),
    "steady_state": [{"store": "redis", "rate_per_s": 2000.0, "ttl_s": 6.0, "seconds": 18.0,
                      "inserted": 36_000, "rate_achieved_per_s": 2000.0,
                      "samples": [[0.0, 0], [6.5, 6100], [7.0, 6100]],
                      "plateau_entries": 6100.0, "model_entries": 6000.0,
                      "bytes_per_entry": 100.0, "plateau_bytes": 610_000.0}],
    "logout_all": _logout_all(),
}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    (tmp_path / "revocation.json").write_text(json.dumps(RESULT))
    return tmp_path


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def test_load_refuses_an_unknown_format_by_name(run: Path) -> None:
    path = run / "revocation.json"
    assert load_revocation(path)["growth"] == RESULT["growth"]
    path.write_text(json.dumps({**RESULT, "format": "authbench-revocation-storage/3"}))
    with pytest.raises(UnknownFormat, match=f"{path}: format 'authbench-revocation-storage/3'"):
        load_revocation(path)
    old = {key: value for key, value in RESULT.items() if key != "format"}
    path.write_text(json.dumps({**old, "schema_version": 2}))
    with pytest.raises(UnknownFormat, match="schema_version 2 and no format"):
        load_revocation(path)


def test_a_file_from_before_the_format_key_still_reads(run: Path) -> None:
    old = {key: value for key, value in RESULT.items() if key != "format"}
    (run / "revocation.json").write_text(json.dumps({**old, "schema_version": 1}))
    assert load_revocation(run / "revocation.json")["growth"] == RESULT["growth"]


def test_growth_table_has_a_row_per_store_and_checkpoint() -> None:
    table = growth_table(RESULT)
    assert len(table) == 6
    assert list(table["store"].unique()) == list(STORES)
    redis = table[table["store"] == "redis"]
    assert list(redis["entries"]) == [1_000, 10_000]
    assert list(redis["bytes"]) == [100_000, 1_000_000]


def test_logout_all_table_keeps_the_cutoff_without_k() -> None:
    table = logout_all_table(RESULT)
    assert len(table) == 9
    cutoffs = table[table["op"] == "set_user_cutoff"]
    assert len(cutoffs) == 3 and cutoffs["k"].isna().all()
    deletes = table[table["op"] == "delete_user_sessions"]
    assert (deletes["removed"] == deletes["k"]).all()


def test_storage_chart_has_a_line_per_store_and_the_plateau() -> None:
    figure = plot_storage_growth(RESULT, "caption")
    axes = figure.axes[0]
    assert [line.get_label() for line in axes.get_lines()] == list(STORES)
    assert axes.get_xscale() == "log" and axes.get_yscale() == "log"
    (plateau,) = axes.collections
    assert np.asarray(plateau.get_offsets())[0].tolist() == [6100.0, 610_000.0]


def test_logout_chart_has_a_line_per_store_and_the_cutoff_reference() -> None:
    figure = plot_logout_all(RESULT, "caption")
    labels = [str(line.get_label()) for line in figure.axes[0].get_lines()]
    assert [label for label in labels if "delete" in label] == [
        f"{store}: delete the user's sessions" for store in STORES]
    assert [label for label in labels if "cutoff" in label] == [
        f"{store}: JWT per-user cutoff" for store in STORES]


def test_section_lines_carry_the_figures(run: Path) -> None:
    lines, figures = revocation_storage_section(run, "caption")
    text = "\n".join(lines)
    assert lines[0].startswith("## Revocation")
    assert "| redis | 10,000 | 1.00 | 100 |" in text
    assert "| postgres | delete_user_sessions | 100 | 0.900 |" in text
    assert "| redis | set_user_cutoff | - | 0.150 |" in text
    assert "R = 2,000 logouts/s and T = 6 s" in text
    assert "~R*T/2 = 6,000 entries" in text
    assert "measured plateau 6,100 entries = 0.61 MB in redis" in text
    assert "~900,000 entries = 90.0 MB (model, not measured)" in text
    assert "- bytes in postgres: postgres method" in text
    assert "- Redis memory is per server." in text
    assert [name for name, _, _ in figures] == ["revocation-storage", "logout-all"]


def test_no_section_without_the_file(tmp_path: Path) -> None:
    assert revocation_storage_section(tmp_path, "caption") == ([], [])
