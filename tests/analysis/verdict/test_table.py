"""The article's table: Performance and Hybrid decided from cost tables with known intervals,
the rest from the checked-in fixture run and small frames."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.data.load import load_probes, load_run
from analysis.report.data import article_table
from analysis.verdict.table import (
    NOT_MEASURED,
    check_cost_text,
    hybrid,
    performance,
    revocation,
    scalability,
    security,
)
from tests.analysis.fixtures import ROOT, build_probes, trial, watch, write_probe_cell

NAN = math.nan
NO_FRAME = pd.DataFrame()
NO_REFRESH = pd.DataFrame(columns=["status", "endpoint"])  # no POST /auth/refresh measured


def flat(name: str, median: float, low: float, high: float) -> dict[str, float]:
    return {name: median, f"{name}_low": low, f"{name}_high": high}


def config(mode: str, store: str, cost: tuple[float, float, float], *, alg: str = "HS256",
           revocation: str = "none", store_cost: tuple[float, float, float] | None = None,
           rtt: float = NAN, auth: float = 20.0, users: int = 10) -> dict[str, Any]:
    """A cost_table row: cost (median, low, high) over 3 repeats, split target + store."""
    store_part = store_cost or (NAN, NAN, NAN)
    target = tuple(c - (s if store_cost else 0.0) for c, s in zip(cost, store_part, strict=True))
    return {"key": f"{mode}-{store}-{alg}-u{users}", "mode": mode, "store": store, "alg": alg,
            "revocation": revocation, "users": users, "nodes": 1, "scenario": "read",
            "repeats": 3, **flat("server_cpu_us", *cost), **flat("target_cpu_us", *target),
            **flat("store_cpu_us", *store_part), "store_rtt_us": rtt, "auth_cpu_us": auth}


JWT = config("jwt", "memory", (100.0, 95.0, 120.0))
ES256 = config("jwt", "memory", (300.0, 280.0, 320.0), alg="ES256", auth=150.0)


def verdict_of(*rows: dict[str, Any]) -> tuple[str, str]:
    result = performance(NO_FRAME, pd.DataFrame(rows))
    assert result.row == "Performance"
    return result.measured, result.verdict


def test_holds_when_every_store_costs_more_than_the_cheapest_jwt() -> None:
    measured, verdict = verdict_of(
        config("session", "memory", (200.0, 190.0, 215.0)),
        config("session", "redis", (400.0, 380.0, 450.0), store_cost=(100.0, 90.0, 120.0),
               rtt=45.4),
        JWT, ES256)
    assert verdict == ("holds: a session lookup in every store cost more per request than "
                       "verifying a JWT (HS256) (CPU per request: memory 200.0 (190.0 to 215.0) "
                       "against 100.0 (95.0 to 120.0) µs; redis 400.0 (380.0 to 450.0) against "
                       "100.0 (95.0 to 120.0) µs)")
    assert measured.startswith("CPU per request, target + store (median and range over 3 "
                               "repeats) — session in memory: 200.0 (190.0 to 215.0) µs")
    assert ("session in redis: 400.0 (380.0 to 450.0) µs (target 300.0 (290.0 to 330.0), "
            "store 100.0 (90.0 to 120.0))") in measured
    assert "JWT HS256: 100.0 (95.0 to 120.0) µs" in measured
    assert "JWT ES256: 300.0 (280.0 to 320.0) µs" in measured
    # The latency added: the cheapest JWT's own verification CPU; an idle store's lookup.
    assert measured.endswith("Latency added per request: JWT HS256 verification 20 µs of "
                             "CPU; one store lookup on an idle store redis 45 µs")


def test_does_not_hold_when_every_store_costs_less() -> None:
    _, verdict = verdict_of(config("session", "memory", (50.0, 45.0, 60.0)),
                            config("session", "redis", (80.0, 70.0, 94.0)), JWT, ES256)
    assert verdict == ("does not hold: a session lookup in every store cost less per request "
                       "than verifying a JWT (HS256) (CPU per request: memory 50.0 (45.0 to "
                       "60.0) against 100.0 (95.0 to 120.0) µs; redis 80.0 (70.0 to 94.0) "
                       "against 100.0 (95.0 to 120.0) µs); the crypto is the dearer step")


def test_depends_on_the_store_when_stores_fall_on_both_sides() -> None:
    _, verdict = verdict_of(config("session", "memory", (50.0, 45.0, 60.0)),
                            config("session", "redis", (300.0, 280.0, 320.0)),
                            config("session", "postgres", (110.0, 100.0, 130.0)), JWT)
    assert verdict == ("depends on the store: sessions in memory cost less than verifying a "
                       "JWT (HS256) (CPU per request: memory 50.0 (45.0 to 60.0) against 100.0 "
                       "(95.0 to 120.0) µs); sessions in redis cost more than verifying a JWT "
                       "(HS256) (CPU per request: redis 300.0 (280.0 to 320.0) against 100.0 "
                       "(95.0 to 120.0) µs); in postgres the same within the spread (CPU per "
                       "request: postgres 110.0 (100.0 to 130.0) against 100.0 (95.0 to 120.0) "
                       "µs)")


def test_indistinguishable_when_every_range_overlaps_the_jwt_range() -> None:
    # 96..125 against 95..120: the medians differ, the ranges do not tell them apart.
    _, verdict = verdict_of(config("session", "memory", (105.0, 96.0, 125.0)),
                            config("session", "redis", (125.0, 118.0, 140.0)), JWT)
    assert verdict == ("indistinguishable in this run: sessions and verifying a JWT (HS256) "
                       "cost the same within the spread of the repeats (CPU per request: memory "
                       "105.0 (96.0 to 125.0) against 100.0 (95.0 to 120.0) µs; redis 125.0 "
                       "(118.0 to 140.0) against 100.0 (95.0 to 120.0) µs)")


def test_a_jwt_with_a_blocklist_is_not_the_jwt_compared() -> None:
    listed = config("jwt", "redis", (40.0, 35.0, 45.0), revocation="blocklist")
    measured, verdict = verdict_of(config("session", "memory", (50.0, 45.0, 60.0)), JWT,
                                   listed)
    assert verdict.startswith("does not hold")  # against plain JWT (95..120), not 35..45
    assert "JWT HS256: 40.0" not in measured


def test_not_measured_without_sessions_or_plain_jwt() -> None:
    assert verdict_of(JWT)[1] == NOT_MEASURED
    assert verdict_of(config("session", "memory", (50.0, 45.0, 60.0)))[1] == NOT_MEASURED
    assert performance(NO_FRAME, pd.DataFrame()).verdict == NOT_MEASURED


def test_a_run_varying_users_compares_each_load_with_its_own() -> None:
    # At both 10 and 50 users a memory session costs a tenth of a JWT.
    _, verdict = verdict_of(config("session", "memory", (5.0, 4.0, 6.0), users=10),
                            config("session", "memory", (500.0, 480.0, 520.0), users=50),
                            config("jwt", "memory", (60.0, 55.0, 65.0), users=10),
                            config("jwt", "memory", (6000.0, 5500.0, 6500.0), users=50))
    assert verdict.startswith("does not hold")


def test_a_configuration_without_a_store_is_not_split_into_target_and_store() -> None:
    measured, _ = verdict_of(config("session", "memory", (200.0, 190.0, 215.0)), JWT)
    assert "session in memory: 200.0 (190.0 to 215.0) µs; " in measured


def test_hybrid_against_its_jwt_twin() -> None:
    same = hybrid(NO_REFRESH, pd.DataFrame([config("hybrid", "memory", (110.0, 100.0, 125.0)),
                                          JWT]))
    assert same.verdict.startswith("holds for the hot path (the hot path cost the same as JWT "
                                   "within the spread of the repeats: 110.0 (100.0 to 125.0) "
                                   "against 100.0 (95.0 to 120.0) µs per request)")
    assert "hybrid HS256 110.0 (100.0 to 125.0) µs" in same.measured
    assert "vs JWT 100.0 (95.0 to 120.0) µs" in same.measured
    dearer = hybrid(NO_REFRESH, pd.DataFrame([config("hybrid", "memory", (200.0, 180.0, 230.0)),
                                            JWT]))
    assert dearer.verdict.startswith("holds for the hot path (the hot path cost more than JWT")
    alone = hybrid(NO_REFRESH, pd.DataFrame([config("hybrid", "memory", (200.0, 180.0, 230.0)),
                                           ES256]))
    assert "no JWT twin to compare with" in alone.verdict  # ES256 is not HS256's twin
    assert hybrid(NO_REFRESH, pd.DataFrame([JWT])).verdict == NOT_MEASURED


def test_verdicts_of_the_tiny_fixture_run() -> None:
    verdicts = {v.row: v for v in article_table(load_run(ROOT / "tiny"))}
    assert list(verdicts) == ["State", "Storage", "Scalability", "Revocation", "Performance",
                              "Cross-Domain", "Security", "Mobile", "Hybrid",
                              "Availability when the store fails"]
    performance = verdicts["Performance"]
    assert "session in memory at 1 node: 4,000.0 µs" in performance.measured  # CPU/request
    assert "JWT HS256 at 1 node: 11,000.0 µs" in performance.measured
    assert "JWT HS256 verification 50 µs of CPU" in performance.measured  # auth-cpu
    assert ("session in redis at 1 node: 5,900.0 µs (target 1,500.0, store 4,400.0)"
            in performance.measured)  # the store's CPU is part of the cost
    assert ("Latency added per request at 1 node: JWT HS256 verification 50 µs of CPU; one "
            "store lookup on an idle store redis 46 µs") in performance.measured
    # Each load against its own JWT: on 1 node memory (4,000 µs) and Redis (5,900) sessions
    # cost less than JWT (11,000); on 2 nodes memory sessions failed (left out, below).
    # (Redis on 1 node against JWT on 2 nodes would be a different load: never compared.)
    assert performance.verdict == ("does not hold: a session lookup in every store cost less "
                                   "per request than verifying a JWT (HS256) (CPU per request: "
                                   "memory at 1 node 4,000.0 against 11,000.0 µs; redis at 1 "
                                   "node 5,900.0 against 11,000.0 µs); the crypto is the "
                                   "dearer step")
    # Half of the 2-node memory sessions' requests failed: their cost is not the cost of
    # serving, so they are left out, and named.
    assert "session in memory at 2 nodes" not in performance.measured
    assert performance.measured.endswith("Left out, their requests failed: "
                                         "session-memory-read-u10-n2 (50 %).")
    assert verdicts["Scalability"].verdict.startswith("holds")
    assert verdicts["Scalability"].measured.startswith("Measured: ")
    assert "session (memory): 50.0% failed on 2 nodes" in verdicts["Scalability"].measured

    assert "JWT: 0.0% failed" in verdicts["Scalability"].measured
    assert verdicts["Revocation"].verdict.startswith("holds: JWT without a blocklist")
    assert "session cookie 49 B" in verdicts["Cross-Domain"].measured
    assert "JWT HS256 320 B" in verdicts["Cross-Domain"].measured
    assert ("a header token crosses origins at the price of its bytes (a bearer token of up to "
            "320 B against a 49 B cookie, on every request)") in verdicts["Cross-Domain"].verdict
    assert verdicts["Security"].measured.startswith("6 of 6 verified cells")
    assert verdicts["State"].verdict == "not measured in this run"
    assert verdicts["Hybrid"].verdict == "not measured in this run"  # its only cell failed


def test_scalability_names_each_multi_node_configuration_once() -> None:
    def row(mode: str, store: str) -> dict[str, object]:
        return {"status": "ok", "endpoint": "GET /api/me", "mode": mode, "store": store,
                "balance": "roundrobin", "nodes": 2, "error_rate": 0.0}

    frame = pd.DataFrame([row("jwt", "memory"), row("jwt", "memory"), row("jwt", "redis"),
                          row("jwt", "postgres")])
    assert scalability(frame).measured == ("Measured: JWT: 0.0% failed on 2 nodes in each of 2 "
                                           "repeats; JWT (postgres): 0.0% failed on 2 nodes; "
                                           "JWT (redis): 0.0% failed on 2 nodes")


def test_security_names_the_store_settings_and_flags_an_evicting_store() -> None:
    def cell(name: str, settings: str) -> dict[str, Any]:
        return {"cell": name, "verify_passed": True, "store_settings": settings}

    safe = "redis maxmemory-policy noeviction, no maxmemory (nothing is evicted)"
    evicting = ("redis maxmemory-policy allkeys-lru, maxmemory 4,194,304 B "
                "(may evict: allowed by STORE_ALLOW_EVICTION=1)")
    quiet = security(pd.DataFrame([cell("a", safe), cell("b", "memory"), cell("c", "")]))
    assert quiet.measured.endswith(f"stores the targets ran on: memory; {safe}")
    assert "may evict" not in quiet.verdict
    loud = security(pd.DataFrame([cell("a", safe), cell("b", evicting)]))
    assert f"but a store that may evict ran ({evicting})" in loud.verdict


def test_the_check_cost_is_each_revoking_jwt_against_jwt_without_with_ranges() -> None:
    rows = [JWT, config("jwt", "redis", (190.0, 180.0, 230.0), revocation="blocklist",
                        store_cost=(15.0, 10.0, 20.0)),
            config("session", "redis", (150.0, 140.0, 160.0))]
    probe = {**config("jwt", "memory", (900.0, 900.0, 900.0)), "scenario": "revocation"}
    text = check_cost_text(pd.DataFrame([*rows, probe]))
    assert text == ("Cost of the check, CPU per request (target + store; median and range over 3 "
                    "repeats): JWT without one 100.0 (95.0 to 120.0) µs; + blocklist in redis "
                    "190.0 (180.0 to 230.0) µs (target 175.0 (170.0 to 210.0), store 15.0 (10.0 "
                    "to 20.0)) (+90)")
    assert check_cost_text(pd.DataFrame([JWT])) == ""  # nothing to compare it with
    assert check_cost_text(pd.DataFrame()) == ""


def test_seeded_configurations_are_state_figures_not_the_performance_comparison() -> None:
    seeded = {**config("session", "memory", (500.0, 480.0, 520.0)), "key": "seeded",
              "scale": 300_000}
    plain = {**config("session", "memory", (50.0, 45.0, 60.0)), "scale": 0}
    measured, verdict = verdict_of(plain, seeded, {**JWT, "scale": 0})
    assert "500.0" not in measured and "500.0" not in verdict
    assert "memory 50.0 (45.0 to 60.0) against 100.0 (95.0 to 120.0) µs" in verdict


def test_the_revocation_verdict_cites_the_lag_and_what_the_check_costs(tmp_path: Path) -> None:
    run = build_probes(tmp_path)
    shared = {"mode": "jwt", "store": "redis", "revocation": "blocklist", "nodes": 2}
    write_probe_cell(run, "005-jwt-redis-revocation-u4-n2-r1", shared,
                     [trial(i, [watch(0, 0.001), watch(1, 0.003)]) for i in range(3)])
    listed = config("jwt", "redis", (190.0, 180.0, 230.0), revocation="blocklist")
    verdict = revocation(NO_FRAME, load_probes(run), pd.DataFrame([JWT, listed])).verdict
    assert verdict.startswith("depends on the strategy: sessions: holds, nothing accepted after "
                              "the delete (every node rejected the first replay, <= 2.0 ms "
                              "after the logout's answer); JWT without revocation: holds, valid "
                              "until exp (500 replays accepted after logout; bound ~892 s)")
    assert ("JWT with a blocklist in redis: as immediate as a session delete, at +90 µs per "
            "request for the blocklist in redis (190.0 (180.0 to 230.0) against 100.0 (95.0 to "
            "120.0) µs); a blocklist in one node's memory does not reach the other nodes") \
        in verdict


def test_without_probes_the_conformance_check_decides_and_the_check_cost_is_cited() -> None:
    def cell(mode: str, revocation_kind: str, revoked: bool) -> dict[str, Any]:
        return {"status": "ok", "mode": mode, "revocation": revocation_kind,
                "revoked_after_logout": revoked}

    frame = pd.DataFrame([cell("session", "none", True), cell("jwt", "none", False),
                          cell("jwt", "blocklist", True)])
    listed = config("jwt", "redis", (190.0, 180.0, 230.0), revocation="blocklist")
    row = revocation(frame, None, pd.DataFrame([JWT, listed]))
    assert row.verdict == ("depends on a blocklist: JWT without one stays valid until exp; with "
                           "one, revocation is as immediate as deleting a session, at +90 µs per "
                           "request for the blocklist in redis (190.0 (180.0 to 230.0) against "
                           "100.0 (95.0 to 120.0) µs)")
    assert "jwt: still accepted after logout" in row.measured
