"""Availability figures from small synthetic timelines with known recovery times."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.verdict.availability import (
    availability,
    baseline_p99,
    fault_lines,
    fault_table,
    plot_fault_timelines,
    recovery_seconds,
)
from analysis.verdict.table import NOT_MEASURED


def timeline(cell: str, mode: str, revocation: str, fault: str, bad: dict[int, dict[str, Any]],
             started: float = 5.0, ended: float = 10.2, seconds: int = 18) -> pd.DataFrame:
    """100 requests a second at p99 10 ms, except the seconds in `bad` (their overrides)."""
    rows = []
    for second in range(seconds):
        row = {"cell": cell, "key": cell, "repeat": 1, "mode": mode, "store": "redis",
               "revocation": revocation, "nodes": 2, "fault": fault, "second": second,
               "ok": 100, "unavailable": 0, "rejected": 0, "failed": 0, "wrongly_accepted": 0,
               "p50_ms": 3.0, "p99_ms": 10.0, "max_ms": 20.0, "fault_started_s": started,
               "fault_ended_s": ended, "fault_error": ""}
        row.update(bad.get(second, {}))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["requests"] = frame[["ok", "unavailable", "rejected", "failed",
                               "wrongly_accepted"]].sum(axis=1)
    return frame


DOWN = {"ok": 0, "unavailable": 80, "p99_ms": 500.0}
SESSION = timeline("001-s", "session", "none", "redis-restart",
                   {5: DOWN, 6: DOWN, 7: DOWN, 8: DOWN, 9: DOWN, 10: DOWN,
                    11: {"ok": 90, "rejected": 10}, 12: {"p99_ms": 80.0}})
JWT = timeline("002-j", "jwt", "none", "redis-restart", {})


def test_recovery_is_counted_from_the_end_of_the_fault_to_the_first_healthy_second() -> None:
    # Seconds 10 (down), 11 (10% rejected), 12 (p99 8x the baseline) are not healthy: 13 is.
    assert baseline_p99(SESSION, 5.0) == 10.0
    assert recovery_seconds(SESSION, 10.2, 10.0) == pytest.approx(2.8)
    assert recovery_seconds(JWT, 10.2, 10.0) == 0.0  # never hurt: recovered at once
    never = timeline("003-n", "session", "none", "redis-restart", {17: DOWN})
    assert math.isnan(recovery_seconds(never, 10.2, 10.0))
    # A second in which no request ended at all is not a healthy one.
    stuck = JWT[JWT["second"] != 12]
    assert recovery_seconds(stuck, 10.2, 10.0) == pytest.approx(2.8)


def test_fault_table_counts_failures_503_share_and_credentials() -> None:
    replays = pd.DataFrame([{"cell": "001-s", "endpoint": "GET /api/me (revoked replay)",
                             "requests": 40, "failures": 2}])
    table = fault_table(pd.concat([SESSION, JWT, timeline("000-x", "jwt", "none", "none", {})]),
                        replays)
    assert list(table["cell"]) == ["001-s", "002-j"]  # the cell without a fault is left out
    session = table.iloc[0]
    assert session["failed"] == 6 * 80 and session["wrongly_rejected"] == 10
    assert session["unavailable_share"] == 1.0  # seconds 5..9: every request a 503
    assert session["revoked_replays"] == 42 and table.iloc[1]["revoked_replays"] == 0
    assert session["recover_s"] == pytest.approx(2.8) and session["wrongly_accepted"] == 0
    assert session["label"] == "session in redis, 2 nodes"
    assert table.iloc[1]["failed"] == 0 and table.iloc[1]["recover_s"] == 0.0
    lines = fault_lines(table)
    assert any("| Redis stopped, restarted with its data | session in redis, 2 nodes | "
               in line and "| 2.8 s | 0 (of 42) |" in line for line in lines)
    assert "Revoked credentials accepted again: 0 (every mode failed closed)." in lines


def test_the_verdict_holds_when_jwt_kept_serving_and_nothing_came_back() -> None:
    table = fault_table(pd.concat([SESSION, JWT]))
    verdict = availability(table)
    assert verdict.verdict.startswith("holds") and "accepted again: 0" in verdict.measured
    # The figures it rests on: JWT's 1,800 requests all served; the session's 480 failures
    # (6 seconds of 80, of 1,680 requests) and its recovery 2.8 s after the store was back.
    assert verdict.verdict.startswith("holds: JWT without revocation kept serving (0 of 1,800 "
                                      "requests failed); the modes that ask the store failed "
                                      "closed (503) while it was down and recovered by itself "
                                      "(480 requests failed, back 2.8 s after the store)")
    assert ("session in redis, 2 nodes: 480 of 1,680 requests failed over 1 fault(s), "
            "recovered 2.8 s after the store was back") in verdict.measured
    assert "otherwise than with 503" not in verdict.verdict
    errors = availability(table.assign(other_failed=[55, 0]))
    assert "but 55 requests failed otherwise than with 503 (e.g. a 500) in session in redis" \
        in errors.verdict
    leaked = table.assign(wrongly_accepted=[0, 3])
    assert availability(leaked).verdict.startswith("does not hold safely")
    assert availability(None).verdict == NOT_MEASURED


def test_the_chart_has_a_row_per_fault() -> None:
    other = timeline("004-k", "jwt", "none", "node-kill", {6: {"failed": 5}})
    figure = plot_fault_timelines(pd.concat([SESSION, JWT, other]), "caption")
    assert isinstance(figure, Figure) and len(figure.axes) == 4
