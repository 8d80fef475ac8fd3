"""Revocation lag from probe files with known contents (tests.analysis.fixtures.build_probes)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from analysis.data.load import load_probes
from analysis.revocation.lag import (
    dead_everywhere,
    lag_lines,
    lag_table,
    plot_lag_cdf,
    revocation_summary,
    series_label,
    strategy_label,
    strategy_of,
)
from tests.analysis.fixtures import build_probes


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return build_probes(tmp_path)


def test_strategy_labels_name_the_store_nodes_and_logout() -> None:
    assert strategy_label({"mode": "session", "store": "redis", "nodes": 1}) == "session in redis"
    assert strategy_label({"mode": "jwt", "store": "memory", "revocation": "blocklist",
                           "nodes": 2}) == "JWT + blocklist in memory (each node its own), 2 nodes"
    assert "pub/sub" in strategy_label({"mode": "jwt", "store": "redis", "revocation": "pubsub"})
    assert strategy_label({"mode": "jwt", "store": "redis", "revocation": "blocklist",
                           "logout": "all"}).endswith("log out everywhere")


def test_a_series_names_the_credential_and_the_node_and_strategy_of_drops_the_node() -> None:
    series = series_label("hybrid, refresh families in redis, 2 nodes", "access", 2, False)
    assert series == "hybrid, refresh families in redis, 2 nodes · access token · other nodes"
    assert strategy_of(series) == "hybrid, refresh families in redis, 2 nodes · access token"
    assert series_label("JWT, no blocklist", "access", 1, True) == "JWT, no blocklist"
    assert series_label("hybrid", "refresh", 2, True) == \
        "hybrid · refresh token · node that logged out"


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
