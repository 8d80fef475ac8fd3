"""Analysis from the checked-in fixture run: known inputs, checked numbers and verdicts."""

from __future__ import annotations

import filecmp
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.costs import SHARED_CORE, interval
from analysis.load import load_run
from analysis.report import Report, answer_section, build_report, method_warnings, write_report
from analysis.summaries import config_table
from analysis.verdicts import article_table
from tests.analysis.fixtures import ROOT, build_tiny

TINY = ROOT / "tiny"


@pytest.fixture(scope="module")
def tiny() -> Report:
    """The tiny run's report, built once (loading histograms is the slow part)."""
    return build_report(TINY)


def test_checked_in_fixture_is_what_the_builder_makes(tmp_path: Path) -> None:
    built = build_tiny(tmp_path)
    comparison = filecmp.dircmp(built, TINY)
    assert not comparison.left_only and not comparison.right_only
    for sub in (built / "cells").iterdir():
        for path in sub.iterdir():
            assert path.read_bytes() == (TINY / "cells" / sub.name / path.name).read_bytes(), path


def test_loader_figures_from_known_histograms(tiny: Report) -> None:
    frame = tiny.frame
    hot = frame[frame["endpoint"] == "GET /api/me"].set_index("cell")
    none = hot.loc["001-none-read-u10-n1-r1"]
    assert none["requests"] == 1000
    assert none["rps"] == pytest.approx(100.0)  # 1,000 requests over a 10 s window
    assert none["p50_ms"] == pytest.approx(0.5, rel=1e-3)
    assert none["p99_ms"] == pytest.approx(0.99, rel=1e-3)
    assert none["max_ms"] == pytest.approx(1.0, rel=1e-3)
    assert math.isnan(none["auth_p50_ms"])
    assert none["cpu_ms_per_request"] == pytest.approx(2.5)  # 2.5 CPU s in the window / 1,000
    assert none["measured_seconds"] == pytest.approx(10.0)
    assert none["planned_seconds"] == pytest.approx(10.0)
    session = hot.loc["002-session-memory-read-u10-n1-r1"]
    assert session["auth_p50_ms"] == pytest.approx(0.005)
    assert session["auth_cpu_mean_us"] == pytest.approx(4.0, rel=1e-3)
    assert session["auth_cpu_p50_us"] == pytest.approx(4.0)
    assert math.isnan(session["store_wall_p50_us"])  # no store call: no store histogram
    assert session["credential_bytes"] == 49
    assert bool(session["revoked_after_logout"]) is True
    assert hot.loc["003-jwt-memory-HS256-read-u10-n1-r1", "sign_us"] == pytest.approx(12.5)
    assert math.isnan(session["sign_us"]) and math.isnan(session["store_rtt_us"])
    redis = hot.loc["007-session-redis-read-u10-n1-r1"]
    assert redis["store_wall_p50_us"] == pytest.approx(250.0)  # Server-Timing store
    assert redis["store_rtt_us"] == pytest.approx(45.5)
    assert redis["auth_p50_ms"] == pytest.approx(0.3)  # wall: includes awaiting the store
    assert redis["auth_cpu_p50_us"] == pytest.approx(6.0)  # CPU: does not
    split = hot.loc["004-session-memory-read-u10-n2-r1"]
    assert split["error_rate"] == pytest.approx(0.5)
    failed = frame[frame["cell"] == "006-hybrid-memory-HS256-read-u10-n1-r1"].iloc[0]
    assert failed["status"] == "failed" and "verification failed" in failed["reason"]


@pytest.mark.parametrize(
    ("cell", "target_us", "target_util", "generator_util", "core_busy", "label", "is_over"),
    [
        # 2.5 s of target CPU / 1,000 requests; 9.0 s of generator CPU on its 1 core: 90 %.
        ("001-none-read-u10-n1-r1", 2500.0, 0.25, 0.9, 0.27, "load generator", False),
        ("002-session-memory-read-u10-n1-r1", 4000.0, 0.36, 0.4, 0.38, "none", False),
        ("003-jwt-memory-HS256-read-u10-n1-r1", 11000.0, 0.88, 0.3, 0.9, "target", False),
        # 2 nodes x 1.5 s over 500 answered + 500 failed requests, on the 1 target core;
        # the core was 97 % busy but the targets used 30 %: other work filled it.
        ("004-session-memory-read-u10-n2-r1", 3000.0, 0.3, 0.2, 0.97, SHARED_CORE, True),
        # 72 % is under 85 %; the pinned core was 98 % busy: full, and not only of targets.
        ("005-jwt-memory-HS256-read-u10-n2-r1", 4500.0, 0.72, 0.55, 0.98, SHARED_CORE, True),
        # Redis's one thread was 88 % busy: the store limited this window.
        ("007-session-redis-read-u10-n1-r1", 1500.0, 0.3, 0.4, 0.31, "store", False),
    ])
def test_cost_utilisation_and_bottleneck_per_cell(cell: str, target_us: float,
                                                  target_util: float, generator_util: float,
                                                  core_busy: float, label: str,
                                                  is_over: bool, tiny: Report) -> None:
    frame = tiny.frame
    row = frame[(frame["cell"] == cell) & (frame["endpoint"] == "GET /api/me")].iloc[0]
    assert row["target_cpu_us"] == pytest.approx(target_us)
    if row["store"] == "memory":  # no shared store: no store CPU
        assert row["server_cpu_us"] == pytest.approx(target_us)
        assert math.isnan(row["store_cpu_us"]) and math.isnan(row["store_util"])
    else:  # 8.8 s of Redis CPU over 2,000 requests; its one thread 88 % busy
        assert row["store_cpu_us"] == pytest.approx(4400.0)
        assert row["server_cpu_us"] == pytest.approx(target_us + 4400.0)
        assert row["store_util"] == pytest.approx(0.88)
    assert row["target_util"] == pytest.approx(target_util)
    assert row["generator_util"] == pytest.approx(generator_util)
    assert row["target_core_busy"] == pytest.approx(core_busy)
    assert row["bottleneck"] == label
    assert bool(row["is_pinned"]) is True
    assert bool(row["is_oversubscribed"]) is is_over


def test_verdicts_from_known_inputs(tiny: Report) -> None:
    assert tiny.verdicts == article_table(tiny.frame)
    verdicts = {v.row: v for v in tiny.verdicts}
    assert list(verdicts) == ["State", "Storage", "Scalability", "Revocation", "Performance",
                              "Cross-Domain", "Security", "Mobile", "Hybrid",
                              "Availability when the store fails"]
    performance = verdicts["Performance"]
    assert "session in memory at 1 nodes: 4,000.0 µs" in performance.measured  # CPU/request
    assert "JWT HS256 at 1 nodes: 11,000.0 µs" in performance.measured
    assert "JWT HS256 verification 50 µs of CPU" in performance.measured  # auth-cpu
    assert ("session in redis at 1 nodes: 5,900.0 µs (target 1,500.0, store 4,400.0)"
            in performance.measured)  # the store's CPU is part of the cost
    assert ("Latency added per request at 1 nodes: JWT HS256 verification 50 µs of CPU; one "
            "store lookup on an idle store redis 46 µs") in performance.measured
    # Each load against its own JWT: on 1 node memory (4,000 µs) and Redis (5,900) sessions
    # cost less than JWT (11,000); on 2 nodes memory sessions (3,000) less than JWT (4,500).
    # (Redis on 1 node against JWT on 2 nodes would be a different load: never compared.)
    assert performance.verdict == ("does not hold: a session lookup in every store cost less "
                                   "per request than verifying a JWT (HS256); the crypto is "
                                   "the dearer step")
    assert "session in memory at 2 nodes: 3,000.0 µs" in performance.measured
    assert verdicts["Scalability"].verdict.startswith("holds")
    assert "session (memory): 50.0% failed on 2 nodes" in verdicts["Scalability"].measured

    assert "JWT: 0.0% failed" in verdicts["Scalability"].measured
    assert verdicts["Revocation"].verdict.startswith("holds: JWT without a blocklist")
    assert "session cookie 49 B" in verdicts["Cross-Domain"].measured
    assert "jwt (HS256) 320 B" in verdicts["Cross-Domain"].measured
    assert verdicts["Security"].measured.startswith("6 of 6 verified cells")
    assert verdicts["State"].verdict == "not measured in this run"
    assert verdicts["Hybrid"].verdict == "not measured in this run"  # its only cell failed


def test_answer_orders_configurations_by_cost_and_warns(tiny: Report) -> None:
    report = tiny
    costs = report.costs.set_index("key")
    assert costs.loc["jwt-memory-HS256-read-u10-n2", "server_cpu_us"] == pytest.approx(4500.0)
    assert interval(costs.loc["session-memory-read-u10-n1"], "floor_ratio").median == \
        pytest.approx(2500 / 4000)
    lines = answer_section(report)
    assert ("Cheapest to dearest: none-read-u10-n1 < session-memory-read-u10-n2 < "
            "session-memory-read-u10-n1 < jwt-memory-HS256-read-u10-n2 < "
            "session-redis-read-u10-n1 < jwt-memory-HS256-read-u10-n1") in lines
    assert any("one repeat per configuration, so no interval" in line for line in lines)
    assert "| session-memory-read-u10-n1 | 4,000.0 | 4,000.0 | - | 0.62 | 250 | 4.0 | - | none |" \
        in lines
    # req/s where the target was the bottleneck; the rest say what limited them.
    assert ("| jwt-memory-HS256-read-u10-n2 | 10 | 3.00 | 3.00 | (160: not the target's "
            "capacity) | target's cores, shared |") in lines
    assert "| jwt-memory-HS256-read-u10-n1 | 10 | 3.00 | 3.00 | 80 | target |" in lines
    assert ("| none-read-u10-n1 | 10 | 0.50 | 0.99 | (100: not the target's capacity) "
            "| load generator |") in lines
    assert ("| session-memory-read-u10-n2 | 2 (more nodes than the targets' cores: they shared "
            "CPUs) | 3,000.0 | 50 (not target-bound) | 2.00 | 2.00 | target's cores, shared |") \
        in lines
    # Redis: target 1,500 + store 4,400 µs; the floor's 2,500 over 5,900; 10^6 / 5,900.
    assert ("| session-redis-read-u10-n1 | 5,900.0 | 1,500.0 | 4,400.0 | 0.42 | 169 | 6.0 | 45.5 "
            "| store |") in lines
    assert not any(line.startswith("**UNRELIABLE RUN") for line in lines)
    assert "### Algorithm choice" not in lines  # one algorithm
    at = lines.index("### Store choice")  # sessions in memory and in Redis, 1 node
    assert lines[at + 4:at + 7] == [
        "| session-memory-read-u10-n1 | memory | 4,000.0 | 4,000.0 | - | - | 2.00 | none |",
        "| session-redis-read-u10-n1 | redis | 5,900.0 | 1,500.0 | 4,400.0 | 45.5 | 2.20 | store |",
        ""]
    warnings = method_warnings(report.frame)
    assert any("006-hybrid" in w and "not measured" in w for w in warnings)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A copy of the tiny fixture run with its report written (once: tests only read it)."""
    run = tmp_path_factory.mktemp("report") / "tiny"
    shutil.copytree(TINY, run)
    return run, write_report(run)


def test_report_files_are_written(tiny_report: tuple[Path, dict[str, Path]]) -> None:
    run, written = tiny_report
    markdown = written["markdown"].read_text()
    assert "## The article's table, re-checked" in markdown
    assert "| Performance |" in markdown
    assert markdown.index("## The answer") < markdown.index("Cheapest to dearest: none-read")
    assert markdown.index("Cheapest to dearest") < markdown.index("## The article's table")
    page = written["html"].read_text()
    assert "<h2 id=answer>The answer</h2>" in page
    assert "<td>jwt-memory-HS256-read-u10-n2</td><td>4,500.0</td>" in page
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
    assert "1/10 s" not in markdown
    assert "10 users · 10.0 s measured per window · 1 repeat ·" in markdown


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


def test_a_run_whose_every_cell_failed_still_gets_a_report(tmp_path: Path) -> None:
    run = tmp_path / "failed"
    shutil.copytree(TINY, run)
    for cell in (run / "cells").iterdir():
        if not cell.name.startswith("006-"):
            shutil.rmtree(cell)
    markdown = write_report(run)["markdown"].read_text()
    assert "No configuration was measured." in markdown
    assert "cell 006-hybrid-memory-HS256-read-u10-n1-r1 was not measured" in markdown


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
