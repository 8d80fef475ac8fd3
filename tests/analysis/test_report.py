"""Analysis from the checked-in fixture run: known inputs, checked numbers and verdicts."""

from __future__ import annotations

import filecmp
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.load import load_run
from analysis.report import best_per_mode, build_report, method_warnings, write_report
from analysis.summaries import config_table
from analysis.verdicts import article_table
from tests.analysis.fixtures import ROOT, build_tiny

TINY = ROOT / "tiny"


def test_checked_in_fixture_is_what_the_builder_makes(tmp_path: Path) -> None:
    built = build_tiny(tmp_path)
    comparison = filecmp.dircmp(built, TINY)
    assert not comparison.left_only and not comparison.right_only
    for sub in (built / "cells").iterdir():
        for path in sub.iterdir():
            assert path.read_bytes() == (TINY / "cells" / sub.name / path.name).read_bytes(), path


def test_loader_figures_from_known_histograms() -> None:
    frame = load_run(TINY)
    hot = frame[frame["endpoint"] == "GET /api/me"].set_index("cell")
    none = hot.loc["001-none-read-u10-n1-r1"]
    assert none["requests"] == 1000
    assert none["rps"] == pytest.approx(100.0)  # 1,000 requests over a 10 s window
    assert none["p50_ms"] == pytest.approx(0.5, rel=1e-3)
    assert none["p99_ms"] == pytest.approx(0.99, rel=1e-3)
    assert none["max_ms"] == pytest.approx(1.0, rel=1e-3)
    assert math.isnan(none["auth_p50_ms"])
    assert none["cpu_ms_per_request"] == pytest.approx(5.0)  # 5 CPU s / 1,000 requests
    session = hot.loc["002-session-memory-read-u10-n1-r1"]
    assert session["auth_p50_ms"] == pytest.approx(0.005)
    assert session["credential_bytes"] == 49
    assert bool(session["revoked_after_logout"]) is True
    split = hot.loc["004-session-memory-read-u10-n2-r1"]
    assert split["error_rate"] == pytest.approx(0.5)
    failed = frame[frame["cell"] == "006-hybrid-memory-HS256-read-u10-n1-r1"].iloc[0]
    assert failed["status"] == "failed" and "verification failed" in failed["reason"]


def test_verdicts_from_known_inputs() -> None:
    verdicts = {v.row: v for v in article_table(load_run(TINY))}
    assert list(verdicts) == ["State", "Storage", "Scalability", "Revocation", "Performance",
                              "Cross-Domain", "Security", "Mobile", "Hybrid"]
    performance = verdicts["Performance"]
    assert "session in memory: 5 µs" in performance.measured
    assert "JWT HS256: 60 µs" in performance.measured
    assert performance.verdict.startswith("does not hold")
    assert verdicts["Scalability"].verdict.startswith("holds")
    assert "session (memory): 50.0% failed on 2 nodes" in verdicts["Scalability"].measured

    assert "JWT: 0.0% failed" in verdicts["Scalability"].measured
    assert verdicts["Revocation"].verdict.startswith("holds: JWT without a blocklist")
    assert "session cookie 49 B" in verdicts["Cross-Domain"].measured
    assert "jwt (HS256) 320 B" in verdicts["Cross-Domain"].measured
    assert verdicts["Security"].measured.startswith("5 of 5 verified cells")
    assert verdicts["State"].verdict == "not measured in this run"
    assert verdicts["Hybrid"].verdict == "not measured in this run"  # its only cell failed


def test_best_configuration_per_mode_and_warnings() -> None:
    report = build_report(TINY)
    best = {b["mode"]: b for b in best_per_mode(report.configs)}
    assert best["jwt"]["key"] == "jwt-memory-HS256-read-u10-n2"  # 160 req/s beats 80
    assert best["jwt"]["rps"] == pytest.approx(160.0)
    assert best["none"]["rps"] == pytest.approx(100.0)
    warnings = method_warnings(report.frame)
    assert any("006-hybrid" in w and "not measured" in w for w in warnings)


@pytest.fixture
def tiny_report(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """A copy of the tiny fixture run with its report written."""
    run = tmp_path / "tiny"
    shutil.copytree(TINY, run)
    return run, write_report(run)


def test_report_files_are_written(tiny_report: tuple[Path, dict[str, Path]]) -> None:
    run, written = tiny_report
    markdown = written["markdown"].read_text()
    assert "## The article's table, re-checked" in markdown
    assert "| Performance |" in markdown
    page = written["html"].read_text()
    assert page.count("data:image/png;base64,") == len(list((run / "charts").glob("*.png")))
    assert "<script" not in page and "http://" not in page.replace("http://127.0.0.1:1", "")
    for name in ("latency-percentiles", "throughput", "scaling", "where-time-goes"):
        assert (run / "charts" / f"{name}.svg").exists()
        assert (run / "charts" / f"{name}.png").stat().st_size > 5_000


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


def test_report_has_configurations_and_transport_chart(
    tiny_report: tuple[Path, dict[str, Path]],
) -> None:
    run, written = tiny_report
    markdown = written["markdown"].read_text()
    assert "## Configurations" in markdown
    assert "| jwt-memory-HS256-read-u10-n2 | 1 | 160 |" in markdown
    assert (run / "charts" / "credential-bytes.png").exists()
    assert "1/10 s" not in markdown and "10 users · 10 s measured" in markdown


def test_an_endpoint_that_only_failed_still_has_a_row(tmp_path: Path) -> None:
    run = tmp_path / "tiny"
    shutil.copytree(TINY, run)
    hdr = run / "cells" / "003-jwt-memory-HS256-read-u10-n1-r1" / "hdr-fixture-1.json"
    data = json.loads(hdr.read_text())
    data["failures"] = {"POST /auth/refresh": 40}
    hdr.write_text(json.dumps(data))
    frame = load_run(run)
    row = frame[(frame["cell"] == "003-jwt-memory-HS256-read-u10-n1-r1")
                & (frame["endpoint"] == "POST /auth/refresh")].iloc[0]
    assert row["failures"] == 40 and row["requests"] == 0 and row["error_rate"] == 1.0


def test_scalability_names_each_multi_node_configuration_once() -> None:
    from analysis.verdicts import scalability

    def row(mode: str, store: str) -> dict[str, object]:
        return {"status": "ok", "endpoint": "GET /api/me", "mode": mode, "store": store,
                "balance": "roundrobin", "nodes": 2, "error_rate": 0.0}

    frame = pd.DataFrame([row("jwt", "memory"), row("jwt", "memory"), row("jwt", "redis"),
                          row("jwt", "postgres")])
    assert scalability(frame).measured == ("JWT: 0.0% failed on 2 nodes; JWT (postgres): 0.0% "
                                           "failed on 2 nodes; JWT (redis): 0.0% failed on 2 "
                                           "nodes")
