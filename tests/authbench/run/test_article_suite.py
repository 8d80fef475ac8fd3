"""The article suite: one run that answers every row of the article's table. A real run takes
about 11 minutes, too long for the test suite; these check its parts: the cells and extras
each row needs, the order they run in, and what is left out without Redis."""

from __future__ import annotations

from dataclasses import replace

import pytest

from authbench.run.runner import cell_seconds, plan
from authbench.run.suite import SERVICES, WINDOWED_SCENARIOS, Suite, load_suite


@pytest.fixture(scope="module")
def article() -> Suite:
    return load_suite("article", SERVICES)


def configs(suite: Suite, **match: object) -> set[str]:
    """The configurations (keys without their rate) of the cells matching every key=value."""
    return {c.config.key for c in suite.cells
            if all(getattr(c, key) == value for key, value in match.items())}


def test_it_is_a_windows_suite_with_both_extras(article: Suite) -> None:
    assert (article.interleave, article.repeats) == ("windows", 4)
    assert set(article.extras) == {"store-ceiling", "revocation-storage"}  # ceiling, blocklist
    assert article.description.startswith("Every row of the article's table")
    assert len({c.key for c in article.cells}) == len(article.cells)


def test_performance_every_mode_closed_loop_and_at_one_rate_with_redis_0_and_1_ms_away(
        article: Suite) -> None:
    read = [c for c in article.cells if c.scenario == "read" and c.nodes == 1 and not c.scale]
    main = {"none-read-u10-n1", "session-memory-read-u10-n1", "jwt-memory-HS256-read-u10-n1",
            "hybrid-memory-HS256-read-u10-n1", "session-redis-read-u10-n1",
            "jwt-redis-HS256-blocklist-read-u10-n1"}
    assert {c.key for c in read if c.rate == ""} == main  # cost per request, closed loop
    shares = {c.rate for c in read if c.rate}
    assert shares == {"40%dearest"}  # one rate for all, below every knee: equal offered load
    at_rate = {(c.config.key, c.store_rtt_ms) for c in read if c.rate}
    assert at_rate == {(key, 0.0) for key in main} | {
        ("session-redis-read-u10-n1-rtt1ms", 1.0),
        ("jwt-redis-HS256-blocklist-read-u10-n1-rtt1ms", 1.0)}
    assert {c.users for c in read} == {10} and {c.alg for c in read} == {"HS256"}


def test_scalability_two_nodes_where_memory_sessions_break_and_shared_ones_do_not(
        article: Suite) -> None:
    assert configs(article, scenario="read", nodes=2) == {
        "session-memory-read-u10-n2", "jwt-memory-HS256-read-u10-n2",
        "session-redis-read-u10-n2"}
    assert all(c.balance == "roundrobin" for c in article.cells if c.nodes == 2)


def test_state_seeds_sessions_in_memory_and_in_redis_at_a_count_beside_none(
        article: Suite) -> None:
    memory = [c for c in article.cells if c.mode == "session" and c.store == "memory"
              and c.scenario == "read" and c.nodes == 1 and not c.rate]
    assert sorted(c.scale for c in memory) == [0, 300_000]  # the same load otherwise
    assert len({replace(c, scale=0) for c in memory}) == 1  # differing only in the seed
    # Redis: read before the window of cells on a rig of their own (nothing else of the run
    # in Redis then): 10^6 sessions, and a JWT cell that seeds none.
    own = [c for c in article.cells if c.scenario not in WINDOWED_SCENARIOS
           and c.store == "redis" and c.fault == "none"]
    assert {(c.mode, c.scale) for c in own} == {("session", 1_000_000), ("jwt", 0),
                                                 ("hybrid", 0)}


def test_revocation_probes_each_strategy_on_two_nodes(article: Suite) -> None:
    probes = [c for c in article.cells if c.scenario == "revocation"]
    assert {(c.mode, c.store, c.revocation) for c in probes} == {
        ("session", "redis", "none"), ("jwt", "memory", "none"), ("jwt", "redis", "blocklist"),
        ("hybrid", "redis", "blocklist")}
    assert {c.nodes for c in probes} == {2} and {c.access_ttl for c in probes} == {0}
    # A JWT without revocation is watched 10 s (the probe's limit) inside the window.
    assert min(c.duration for c in probes) > 10


def test_availability_a_redis_outage_per_mode(article: Suite) -> None:
    faults = [c for c in article.cells if c.fault != "none"]
    assert {c.scenario for c in faults} == {"faults"}
    assert {(c.mode, c.revocation, c.fault) for c in faults} == {
        ("session", "none", "redis-restart"), ("jwt", "none", "redis-restart"),
        ("jwt", "blocklist", "redis-restart"), ("hybrid", "blocklist", "redis-restart")}
    # The fault starts 5 s in and lasts 5 s: the window leaves time to see the recovery.
    assert {c.duration for c in faults} == {20.0} and {c.nodes for c in faults} == {2}


def test_probe_and_fault_cells_run_once_after_every_window(article: Suite) -> None:
    order = plan(article)
    windowed = [c for c in article.cells if c.scenario in WINDOWED_SCENARIOS]
    after = [c for c in article.cells if c.scenario not in WINDOWED_SCENARIOS]
    assert len(order) == article.repeats * len(windowed) + len(after)
    assert [cell for _, cell, _ in order[-len(after):]] == after
    assert all(repeat == 1 for _, _, repeat in order[-len(after):])
    assert {cell.scenario for _, cell, _ in order[:-len(after)]} <= set(WINDOWED_SCENARIOS)


def test_it_is_estimated_well_under_twelve_minutes(article: Suite) -> None:
    # The runner's own estimate of the cells (its windows, and each own rig's start and
    # login), plus what it leaves out, as measured here: the load phase (59 s), the two
    # extras (81 s) and the report (58 s), each rounded up.
    windows = sum(cell_seconds(c, "windows") for _, c, _ in plan(article)
                  if c.scenario in WINDOWED_SCENARIOS)
    own = sum(cell_seconds(c) for _, c, _ in plan(article) if c.scenario not in
              WINDOWED_SCENARIOS)
    assert windows + own + 60 + 90 + 60 < 12 * 60


def test_without_redis_the_memory_rows_remain_and_the_notes_say_why() -> None:
    suite = load_suite("article", ["postgres"])
    assert {c.store for c in suite.cells} == {"memory"}
    assert configs(suite, scenario="revocation") == {"jwt-memory-HS256-revocation-u10-n2"}
    assert all("redis not reachable" in note for note in suite.skipped)
    assert len(suite.skipped) == 7  # every block that needs Redis
