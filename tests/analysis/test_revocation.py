"""Revocation lag and overhead from probe files with known contents."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis.report import markdown_html, write_report
from analysis.revocation import (
    dead_everywhere,
    lag_lines,
    lag_table,
    load_probes,
    overhead_table,
    plot_lag_cdf,
    revocation_summary,
    strategy_label,
)
from tests.analysis.fixtures import ROOT


def watch(node: int, rejected: float | None, accepted: int = 0, before: bool = True,
          credential: str = "access") -> dict[str, Any]:
    return {"node": node, "credential": credential, "accepted_before": before,
            "rejected_after_s": rejected, "accepted_after_logout": accepted,
            "last_accepted_s": None, "replays": accepted + 1, "errors": 0}


def trial(number: int, watches: list[dict[str, Any]], expires_in: float | None = 900.0,
          complete: bool = True, login_node: int = 0) -> dict[str, Any]:
    return {"probe": 0, "number": number, "mode": "jwt", "logout": "one",
            "login_node": login_node, "logout_at": 1e9 + number, "interval_s": 0.02,
            "max_wait_s": 10.0, "expires_in_s": expires_in, "watches": watches,
            "observed_s": 10.0 if complete else 3.0, "is_complete": complete}


def write_cell(run: Path, name: str, cell: dict[str, Any], trials: list[dict[str, Any]],
               status: str = "ok") -> None:
    folder = run / "cells" / name
    folder.mkdir(parents=True)
    (folder / "cell.json").write_text(json.dumps({"status": status, "cell": cell}))
    (folder / "probe-host-1.json").write_text(json.dumps(
        {"format": "authbench-probe/1", "host": "host", "pid": 1, "trials": trials}))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    session = {"mode": "session", "store": "redis", "revocation": "none", "nodes": 2}
    cut_short = {**watch(0, None), "replays": 0}  # the run ended before its first replay
    write_cell(tmp_path, "001-session-redis-revocation-u4-n2-r1", session,
               [*(trial(i, [watch(0, 0.001), watch(1, 0.002)], None) for i in range(4)),
                trial(4, [cut_short, {**cut_short, "node": 1}], None, complete=False)])
    per_node = {"mode": "jwt", "store": "memory", "revocation": "blocklist", "nodes": 2,
                "access_ttl": 5}
    write_cell(tmp_path, "002-jwt-memory-revocation-u4-n2-r1", per_node, [
        trial(1, [watch(0, 0.001), watch(1, 6.0, accepted=300)], expires_in=4.0),
        trial(2, [watch(0, 0.001), watch(1, None, accepted=150)], expires_in=4.5,
              complete=False),
        trial(3, [watch(0, 0.001), watch(1, 0.0, before=False)], expires_in=4.5),
    ])
    plain = {"mode": "jwt", "store": "memory", "revocation": "none", "nodes": 1}
    write_cell(tmp_path, "003-jwt-memory-revocation-u4-n1-r1", plain,
               [trial(1, [watch(0, None, accepted=500)], expires_in=890.0)])
    write_cell(tmp_path, "004-failed-r1", plain, [trial(1, [watch(0, 0.5)])], status="failed")
    return tmp_path


def test_strategy_labels_name_the_store_nodes_and_logout() -> None:
    assert strategy_label({"mode": "session", "store": "redis", "nodes": 1}) == "session in redis"
    assert strategy_label({"mode": "jwt", "store": "memory", "revocation": "blocklist",
                           "nodes": 2}) == "JWT + blocklist in memory (each node its own), 2 nodes"
    assert "pub/sub" in strategy_label({"mode": "jwt", "store": "redis", "revocation": "pubsub"})
    assert strategy_label({"mode": "jwt", "store": "redis", "revocation": "blocklist",
                           "logout": "all"}).endswith("log out everywhere")


def test_load_probes_keeps_ok_cells_and_names_the_series(run: Path) -> None:
    probes = load_probes(run)
    assert set(probes["cell"]) == {"001-session-redis-revocation-u4-n2-r1",
                                   "002-jwt-memory-revocation-u4-n2-r1",
                                   "003-jwt-memory-revocation-u4-n1-r1"}
    assert len(probes) == 10 + 6 + 1
    assert probes.loc[probes["cell"].str.startswith("001"), "key"].iloc[0] == \
        "session-redis-revocation-u4-n2"
    series = set(probes["series"])
    assert "session in redis, 2 nodes · node that logged out" in series
    assert "session in redis, 2 nodes · other nodes" in series


def test_bad_probe_file_is_refused(tmp_path: Path) -> None:
    write_cell(tmp_path, "001-x-r1", {"mode": "jwt"}, [])
    path = tmp_path / "cells" / "001-x-r1" / "probe-host-1.json"
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not an authbench probe file"):
        load_probes(tmp_path)


def test_lag_table_counts_rejections_censoring_and_leaks(run: Path) -> None:
    table = lag_table(load_probes(run)).set_index("series")
    session = table.loc["session in redis, 2 nodes · other nodes"]
    # The trial cut before its first replay is left out: it says nothing.
    assert session["watches"] == 4 and session["rejected"] == 4 and session["not_rejected"] == 0
    assert session["p50_ms"] == pytest.approx(2.0) and session["accepted_after_logout"] == 0
    assert session["at_first_replay"]
    other = table.loc["JWT + blocklist in memory (each node its own), 5 s tokens, 2 nodes "
                      "· other nodes"]
    # The node that never accepted the token (trial 3) is left out, and so is trial 2,
    # cut by the end of the run while still accepted: it is neither a lag nor a bound.
    assert other["watches"] == 1 and other["rejected"] == 1 and other["not_rejected"] == 0
    assert other["cut_short"] == 1
    assert other["accepted_after_logout"] == 300 and other["max_accepted"] == 300
    assert other["at_expiry"] == 1  # rejected at 6.0 s of a token with 4.0 s left
    plain = table.loc["JWT, no blocklist"]
    assert plain["rejected"] == 0 and math.isnan(plain["p50_ms"])
    assert plain["bound_s"] == pytest.approx(892.0)  # remaining lifetime + the leeway


def test_lag_lines_show_bounds_not_invented_lags(run: Path) -> None:
    text = "\n".join(lag_lines(load_probes(run)))
    assert "| JWT, no blocklist | 1 | never rejected while watched (up to 10.0 s); bound: the " \
           "remaining lifetime, ~892 s | 500 (max 500 in one) | 1 of 1 |" in text
    assert "rejected only when the token expired: after 6.00 s" in text
    summary = revocation_summary(load_probes(run))
    assert "nothing accepted after logout, the first replay on every node rejected (<= 2.0 ms): " \
           "session in redis, 2 nodes. " in summary
    assert "JWT, no blocklist: never rejected in 10 s watched (bound ~892 s), 500 replays " \
           "accepted after logout" in summary
    assert "· other nodes: accepted until the token expired (6.0 s), 300 replays" in summary
    assert "1 more cut short by the end of the run (left out)" in text
    assert "| session in redis, 2 nodes · other nodes | 4 | rejected at the first replay (it " \
           "left 2.0 ms after the logout's answer" in text


def test_dead_everywhere_is_the_last_node_to_reject(run: Path) -> None:
    trials = dead_everywhere(load_probes(run)).set_index("trial")
    session = trials[trials["label"] == "session in redis, 2 nodes"]
    assert len(session) == 4 and (session["dead_ms"] == 2.0).all()  # node 1, at 2 ms
    per_node = trials[trials["label"].str.startswith("JWT + blocklist in memory")]
    # Trial 1: node 1 rejected at exp (6 s); trial 2 was cut short (left out); trial 3:
    # only node 0 knew the token, so it was dead everywhere when node 0 rejected it.
    assert sorted(per_node["dead_ms"]) == [1.0, 6000.0]
    assert per_node["accepted_after_logout"].sum() == 300


def test_lag_cdf_draws_one_step_line_per_strategy(run: Path) -> None:
    probes = load_probes(run)
    figure = plot_lag_cdf(probes, "caption")
    lines = figure.axes[0].get_lines()
    assert len(lines) == 3  # session in redis, per-node memory blocklist, JWT without one
    censored = [ln for ln in lines if "still accepted when the watch ended" in str(ln.get_label())]
    assert len(censored) == 1  # JWT without a blocklist; the cut trial is left out
    # The CDF does not reach 1.
    assert all(float(np.max(np.asarray(ln.get_ydata()))) < 1.0 for ln in censored)


def test_overhead_is_relative_to_jwt_without_revocation_on_the_same_load() -> None:
    def row(mode: str, revocation: str, store: str, cost: float, rps: float,
            users: int = 20) -> dict[str, Any]:
        return {"status": "ok", "endpoint": "GET /api/me", "scenario": "read", "users": users,
                "nodes": 1, "mode": mode, "revocation": revocation, "store": store,
                "server_cpu_us": cost, "auth_cpu_mean_us": cost / 10, "auth_p50_ms": 0.05,
                "rps": rps, "p99_ms": 5.0}

    frame = pd.DataFrame([row("none", "none", "memory", 80.0, 1300.0),
                          row("jwt", "none", "memory", 100.0, 1000.0),
                          row("jwt", "none", "memory", 110.0, 1000.0),  # median 105
                          row("jwt", "blocklist", "redis", 305.0, 800.0),
                          row("jwt", "pubsub", "redis", 115.0, 980.0),
                          row("jwt", "blocklist", "redis", 500.0, 500.0, users=50)])
    table = overhead_table(frame)
    at_20 = table[table["users"] == 20].set_index("strategy")
    # Cost is CPU per request (target + store), the median over repeats.
    assert at_20.loc["JWT + blocklist in redis", "cost_us"] == pytest.approx(305.0)
    assert at_20.loc["JWT + blocklist in redis", "extra_us"] == pytest.approx(200.0)
    assert at_20.loc["JWT + blocklist in redis", "auth_cpu_us"] == pytest.approx(30.5)
    assert at_20.loc["JWT + blocklist in redis", "auth_p50_us"] == pytest.approx(50.0)
    assert at_20.loc["JWT + blocklist in redis", "rps_ratio"] == pytest.approx(0.8)
    assert at_20.loc["JWT, no blocklist", "extra_us"] == pytest.approx(0.0)
    assert at_20.loc["JWT + blocklist in node memory via Redis pub/sub", "extra_us"] == \
        pytest.approx(10.0)
    assert "none" not in at_20.index  # no credential: nothing to revoke
    # 50 users have no JWT without revocation to compare with: no extra is made up.
    alone = table[table["users"] == 50].iloc[0]
    assert alone["cost_us"] == pytest.approx(500.0) and math.isnan(alone["extra_us"])


def add_probes(run: Path) -> None:
    """Probe files in two cells of a copy of the tiny fixture run (session, 2-node JWT)."""
    session = run / "cells" / "002-session-memory-read-u10-n1-r1" / "probe-host-1.json"
    session.write_text(json.dumps({"format": "authbench-probe/1", "host": "h", "pid": 1,
                                   "trials": [trial(i, [watch(0, 0.001)], None)
                                              for i in range(5)]}))
    jwt = run / "cells" / "005-jwt-memory-HS256-read-u10-n2-r1" / "probe-host-1.json"
    jwt.write_text(json.dumps({"format": "authbench-probe/1", "host": "h", "pid": 1, "trials": [
        trial(i, [watch(0, None, 400), watch(1, None, 400)], 880.0) for i in range(3)]}))


def test_report_has_a_revocation_section_with_its_chart(tmp_path: Path) -> None:
    run = tmp_path / "tiny"
    shutil.copytree(ROOT / "tiny", run)
    add_probes(run)
    written = write_report(run)
    markdown = written["markdown"].read_text()
    section = markdown[markdown.index("## Revocation"):markdown.index("## Configurations")]
    assert "### How long a logged-out credential keeps working" in section
    assert "| session in memory · node that logged out | 5 |" not in section  # one node
    assert "| session in memory | 5 | rejected at the first replay (it left 1.0 ms" in section
    assert "never rejected while watched" in section
    assert "![Revocation lag per strategy](charts/revocation-lag.svg)" in section
    assert (run / "charts" / "revocation-lag.png").stat().st_size > 5_000
    verdict = next(line for line in markdown.splitlines() if line.startswith("| Revocation |"))
    assert "depends on the strategy: sessions: holds" in verdict
    assert "JWT without revocation: holds, valid until exp" in verdict
    page = written["html"].read_text()
    assert "<h2>Revocation</h2>" in page and "id=chart-revocation-lag" in page
    assert "<td>session in memory</td>" in page


def test_markdown_html_turns_tables_and_headings_into_html() -> None:
    page = markdown_html(["## Title", "", "Some <text>.", "", "| a | b |", "|---|---|",
                          "| 1 | 2 |", "- point"])
    assert page.startswith("<h2>Title</h2>")
    assert "<p>Some &lt;text&gt;.</p>" in page
    assert "<thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td>" in page
    assert "<li>point</li>" in page
