"""The suite key store_rtt_ms: which cells take it, its names, its errors."""

from __future__ import annotations

import pytest

from authbench.run.suite import SERVICES, SuiteError, load_suite, parse_suite

HEAD = 'name = "rtt"\n[[matrix]]\n'


def parse(block: str) -> list[str]:
    return [c.key for c in parse_suite(HEAD + block, "rtt.toml", SERVICES).cells]


def test_a_list_sweeps_the_round_trip_and_names_each_cell() -> None:
    keys = parse('mode = "session"\nstore = "redis"\nstore_rtt_ms = [0, 0.25, 1]\n')
    assert keys == ["session-redis-read-u10-n1", "session-redis-read-u10-n1-rtt0.25ms",
                    "session-redis-read-u10-n1-rtt1ms"]


def test_a_whole_number_is_a_round_trip_in_ms() -> None:
    cell = parse_suite(HEAD + 'mode = "session"\nstore = "postgres"\nstore_rtt_ms = 2\n',
                       "rtt.toml", SERVICES).cells[0]
    assert cell.store_rtt_ms == 2.0
    assert cell.is_delayed


@pytest.mark.parametrize(("block", "delayed"), [
    ('mode = "jwt"\nstore = "redis"\n', True),  # the control: a store, never read
    ('mode = "jwt"\nstore = "redis"\nrevocation = "blocklist"\n', True),
    ('mode = "jwt"\nstore = "redis"\nrevocation = "pubsub"\n', True),
    ('mode = "hybrid"\nstore = "redis"\nrevocation = "blocklist"\n', True),
    ('mode = "jwt"\nstore = "memory"\n', False),  # nothing to put a delay in front of
    ('mode = "none"\n', False),
])
def test_which_cells_get_a_delay_line(block: str, delayed: bool) -> None:
    cell = parse_suite(HEAD + block + "store_rtt_ms = 1\n", "rtt.toml", SERVICES).cells[0]
    assert cell.is_delayed == delayed


@pytest.mark.parametrize("block", ['mode = "session"\nstore = "memory"\n',
                                   'mode = "hybrid"\nstore = "memory"\n',
                                   'mode = "jwt"\nstore = "memory"\nrevocation = "blocklist"\n'])
def test_a_round_trip_to_a_memory_store_is_refused_with_the_fix(block: str) -> None:
    with pytest.raises(SuiteError, match=r"rtt\.toml \[\[matrix\]\] #1: store_rtt_ms = 0\.5 "
                                         r"delays the way to a Redis or PostgreSQL store.*"
                                         r"store_rtt_ms = 0"):
        parse(block + "store_rtt_ms = 0.5\n")


@pytest.mark.parametrize(("value", "reason"), [
    ("-1", "greater than or equal to 0"), ("1001", "less than or equal to 1000"),
    ('"1ms"', "valid number"), ("true", "valid number")])
def test_a_bad_round_trip_names_the_key_and_why(value: str, reason: str) -> None:
    with pytest.raises(SuiteError, match=rf"store_rtt_ms = .*{reason}"):
        parse(f'mode = "session"\nstore = "redis"\nstore_rtt_ms = {value}\n')


def test_offbox_sweeps_every_store_mode_over_five_round_trips_at_one_rate() -> None:
    suite = load_suite("offbox", SERVICES)
    delayed = [c for c in suite.cells if c.mode != "none"]
    assert {c.store_rtt_ms for c in delayed} == {0.0, 0.25, 0.5, 1.0, 2.0}
    families = {(c.mode, c.revocation) for c in delayed}
    assert families == {("session", "none"), ("jwt", "none"), ("jwt", "blocklist"),
                        ("jwt", "pubsub"), ("hybrid", "blocklist")}
    assert all(c.store == "redis" for c in delayed)
    assert {c.rate for c in suite.cells} == {"15%"}  # equal offered load, open model
    assert suite.interleave == "windows" and "store-ceiling" in suite.extras


def test_offbox_without_redis_keeps_only_the_floor_and_says_why() -> None:
    suite = load_suite("offbox", available=["postgres"])
    assert [c.mode for c in suite.cells] == ["none"]
    assert len(suite.skipped) == 3 and all("redis not reachable" in s for s in suite.skipped)
