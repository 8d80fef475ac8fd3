"""The revocation probe against real targets whose lag is known in advance.

Each case runs real uvicorn nodes (sharing a store namespace and a signing key, as
a suite cell's nodes do) and a real Locust process with background readers and
probes, then reads the probe files: a deleted session is rejected at the first
replay with nothing accepted after logout; a JWT without revocation keeps working
until exp and is rejected from then on (and, with exp far off, is watched until the
probe gives up, never rejected).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authbench.infra.launcher import TargetProcess
from authbench.run.cell import Cell
from authbench.run.locustrun import run_locust
from targets.keys import generate_key, write_key
from tests.conftest import StartTarget
from tests.support import unique_namespace

pytestmark = pytest.mark.slow  # real Locust runs against real targets

TTL = 2  # seconds: ACCESS_TTL of the cases that wait for exp
INTERVAL = 0.02  # the probe's default replay interval, seconds
SLACK = 0.25  # seconds: a replay's own latency on a loaded 2-core machine


@dataclass(frozen=True)
class Case:
    name: str
    mode: str
    store: str = "memory"
    revocation: str = "none"
    nodes: int = 1
    logout: str = "one"
    ttl: int = 0


def watches(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(trial, watch) of every probe file, for complete trials and nodes that knew the token."""
    found = []
    for path in folder.glob("probe-*.json"):
        data = json.loads(path.read_text())
        assert data["format"] == "authbench-probe/1"
        for trial in data["trials"]:
            if trial["is_complete"]:
                found += [(trial, w) for w in trial["watches"] if w["accepted_before"]]
    return found


def run_probe(case: Case, start_target: StartTarget, tmp_path: Path,
              request: pytest.FixtureRequest) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    env = {"AUTH_MODE": case.mode, "STORE": case.store, "JWT_REVOCATION": case.revocation,
           "SEED_USERS": "50", "JWT_LEEWAY": "0"}
    if case.store != "memory":
        env["STORE_URL"] = request.getfixturevalue(f"{case.store}_url")
        env["STORE_NAMESPACE"] = unique_namespace()
    if case.ttl:
        env["ACCESS_TTL"] = str(case.ttl)
    keys = tmp_path / "keys"
    write_key(keys, "HS256", generate_key("HS256"))
    env["JWT_KEYS_DIR"] = str(keys)
    nodes: list[TargetProcess] = [start_target(**env) for _ in range(case.nodes)]
    folder = tmp_path / "cell"
    folder.mkdir()
    # Immediate strategies finish a trial a second; waiting for exp takes TTL seconds.
    duration = 7 if case.ttl else 4
    cell = Cell(mode=case.mode, store=case.store, revocation=case.revocation, nodes=case.nodes,
                scenario="revocation", logout=case.logout, users=4, duration=duration, warmup=1)
    outcome = run_locust(cell, nodes[0].url, folder, seed_users=50,
                         node_urls=[n.url for n in nodes])
    assert outcome.exit_code == 0, outcome.log_tail
    found = watches(folder)
    assert len({(t["probe"], t["number"]) for t, _ in found}) >= 2, outcome.log_tail
    return found


@pytest.mark.parametrize("case", [
    Case("session-redis", "session", "redis", nodes=2),
    Case("session-memory-logout-all", "session", logout="all"),
    Case("jwt-blocklist-postgres", "jwt", "postgres", "blocklist", nodes=2),
    Case("jwt-cutoff-redis", "jwt", "redis", "blocklist", nodes=2, logout="all"),
], ids=lambda c: c.name)
def test_immediate_strategies_accept_nothing_after_logout(
    case: Case, start_target: StartTarget, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    found = run_probe(case, start_target, tmp_path, request)
    assert {w["node"] for _, w in found} == set(range(case.nodes))  # every node knew it
    for _, watch in found:
        assert watch["accepted_after_logout"] == 0, watch
        assert watch["rejected_after_s"] is not None, watch
        assert watch["rejected_after_s"] < SLACK  # the first replay, sent at once
        assert watch["replays"] == 1


def test_jwt_without_revocation_is_accepted_until_exp(
    start_target: StartTarget, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    found = run_probe(Case("jwt-none", "jwt", ttl=TTL), start_target, tmp_path, request)
    for trial, watch in found:
        remaining = trial["expires_in_s"]
        assert 0 < remaining <= TTL
        # Accepted on every replay until exp (one per interval), rejected from exp on.
        assert watch["accepted_after_logout"] >= 0.5 * remaining / INTERVAL, (trial, watch)
        assert watch["last_accepted_s"] < remaining + SLACK
        assert remaining - SLACK < watch["rejected_after_s"] < remaining + SLACK


def test_a_blocklist_in_one_nodes_memory_does_not_reach_the_other(
    start_target: StartTarget, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    case = Case("jwt-memory-blocklist", "jwt", "memory", "blocklist", nodes=2, ttl=TTL)
    found = run_probe(case, start_target, tmp_path, request)
    for trial, watch in found:
        if watch["node"] == trial["login_node"]:
            assert watch["accepted_after_logout"] == 0 and watch["replays"] == 1
        else:
            assert watch["accepted_after_logout"] > 0
            assert watch["rejected_after_s"] > trial["expires_in_s"] - SLACK
    assert {w["node"] != t["login_node"] for t, w in found} == {True, False}


def test_pubsub_reaches_every_node_within_a_replay_or_two(
    start_target: StartTarget, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    found = run_probe(Case("jwt-pubsub", "jwt", "redis", "pubsub", nodes=2), start_target,
                      tmp_path, request)
    for trial, watch in found:
        if watch["node"] == trial["login_node"]:
            # The node that logged out writes its memory before it answers.
            assert watch["accepted_after_logout"] == 0 and watch["replays"] == 1, watch
        else:
            # The other node hears it through its subscription, which is not ordered with
            # the logout's answer: Redis writes the script's reply before the message it
            # published, so a replay can overtake the message by a few milliseconds on a
            # loaded machine. Bounded, never until exp.
            assert watch["rejected_after_s"] is not None, watch
            assert watch["rejected_after_s"] < SLACK, watch
    assert {w["node"] for _, w in found} == {0, 1}
    assert {w["node"] != t["login_node"] for t, w in found} == {True, False}


def test_hybrid_refresh_is_revoked_at_once_and_access_lives_until_exp(
    start_target: StartTarget, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    found = run_probe(Case("hybrid", "hybrid", "redis", ttl=TTL), start_target, tmp_path,
                      request)
    kinds = {w["credential"] for _, w in found}
    assert kinds == {"access", "refresh"}
    for trial, watch in found:
        if watch["credential"] == "refresh":
            assert watch["accepted_after_logout"] == 0 and watch["replays"] == 1
        else:
            assert watch["accepted_after_logout"] > 0
            assert watch["rejected_after_s"] > trial["expires_in_s"] - SLACK


def test_a_logout_that_does_not_revoke_is_watched_until_the_probe_gives_up(
    start_target: StartTarget, tmp_path: Path, request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twins' jwt mode without revocation: the logout answers 200 and the token keeps
    working. The probe trusts no status: it records the token accepted after logout, no
    rejection, and how long the token had left to live."""
    max_wait = 1.0
    monkeypatch.setenv("AUTHBENCH_PROBE_MAX_S", str(max_wait))
    found = run_probe(Case("jwt-none-long", "jwt"), start_target, tmp_path, request)
    for trial, watch in found:
        assert trial["expires_in_s"] is not None and trial["expires_in_s"] > 10 * max_wait
        assert watch["accepted_after_logout"] > 0, (trial, watch)
        assert watch["accepted_after_logout"] == watch["replays"], watch
        assert watch["rejected_after_s"] is None and watch["errors"] == 0, watch
        assert trial["observed_s"] >= max_wait
