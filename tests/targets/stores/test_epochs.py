"""The revocation marker in each real store, and the guard that finds a lost state.

Losses are real: keys deleted from a namespace of the shared Redis, TRUNCATE in a
PostgreSQL schema of the test's own, and restarts, evictions and FLUSHALL only on a
redis-server of the test's own (tests/targets/redis_server.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from targets.stores import (
    Epoch,
    EpochGuard,
    MemoryStore,
    PostgresStore,
    RedisStore,
    Store,
    StoreUnavailable,
)
from targets.stores.resp import RedisAddress
from tests.support import closed_port, unique_namespace
from tests.targets.redis_server import StartRedis

TIMEOUT = 2.0  # generous: a shared, maybe slow, test machine
FAST = 0.1  # heartbeat and timeout of the guards that watch for a loss in the background


@pytest.fixture(params=("memory", "redis", "postgres"))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """An opened store of each kind, in a namespace of its own; emptied afterwards."""
    kind: str = request.param
    opened: Store
    if kind == "redis":
        opened = RedisStore(request.getfixturevalue("redis_url"), unique_namespace(), TIMEOUT, 4)
    elif kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        opened = PostgresStore(url, unique_namespace(), TIMEOUT, 4)
    else:
        opened = MemoryStore()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.discard()
        await opened.close()


async def wait_until(condition: Callable[[], bool], what: str, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# --- the marker --------------------------------------------------------------------------


def test_marker_bytes_round_trip_and_junk_is_refused() -> None:
    marker = Epoch("e1", 1000.5, 1000.75, "run-1", 3)
    assert Epoch.from_json(marker.to_json()) == marker
    assert marker.to_json() == Epoch("e1", 1000.5, 1000.75, "run-1", 3).to_json()
    for junk in (b"", b"1", b"{}", b'["e", "soon", 1, null, null]', b'["e", 1, 1, 2, null]'):
        with pytest.raises(ValueError, match="not a revocation marker"):
            Epoch.from_json(junk)


async def test_each_store_keeps_the_marker_and_replaces_it_only_as_expected(
    store: Store,
) -> None:
    first, second = Epoch("first", 10.0, 10.5), Epoch("second", 20.0, 20.5)
    marker, _ = await store.read_epoch()
    assert marker is None
    stored = await store.replace_epoch(None, first)
    assert (stored.epoch, stored.cutoff) == ("first", 10.5) if stored else stored
    assert (await store.read_epoch())[0] == stored
    # Another node wrote first: replacing "an absent marker" now fails and says what is there.
    lost_race = await store.replace_epoch(None, second)
    assert lost_race is not None and lost_race.epoch == "first"
    assert stored is not None
    replaced = await store.replace_epoch(stored, second)
    assert replaced is not None and replaced.epoch == "second"
    # The global cutoff only moves up, and only within its own epoch.
    raised = await store.raise_epoch_cutoff("second", 30.0)
    assert raised is not None and raised.cutoff == 30.0
    kept = await store.raise_epoch_cutoff("second", 25.0)
    assert kept is not None and kept.cutoff == 30.0
    other = await store.raise_epoch_cutoff("first", 99.0)
    assert other is not None and (other.epoch, other.cutoff) == ("second", 30.0)
    # Emptying the store takes the marker with it.
    await store.clear()
    assert (await store.read_epoch())[0] is None


async def test_the_marker_is_no_blocklist_entry_or_user_cutoff(store: Store) -> None:
    await store.replace_epoch(None, Epoch("e", 1.0, 2.0))
    state = await store.revocation_state("any-jti", "user1", time.time())
    assert not state.is_blocked and state.cutoff is None


# --- the guard ---------------------------------------------------------------------------


async def test_a_first_start_revokes_everything_issued_before_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    before = time.time()
    guard = EpochGuard(store, TIMEOUT)
    with caplog.at_level(logging.WARNING, "targets.epochs"):
        await guard.open()
    try:
        assert before <= guard.cutoff <= time.time()
        assert guard.is_revoked(before) and not guard.is_revoked(time.time() + 0.001)
        stored, _ = await store.read_epoch()
        assert stored is not None and stored.cutoff == guard.cutoff
        health = guard.describe()
        assert health["epoch"] == stored.epoch and health["global_cutoff"] == guard.cutoff
        assert health["lost_at"] is not None and health["losses"] == 1
        (record,) = caplog.records
        assert record.levelno == logging.WARNING  # at start: expected for a new namespace
        assert "every token issued before" in record.getMessage()
    finally:
        await guard.close()


async def test_a_second_node_adopts_the_marker_without_a_loss(redis_url: str) -> None:
    namespace = unique_namespace()
    stores = [RedisStore(redis_url, namespace, TIMEOUT, 2) for _ in range(2)]
    for each in stores:
        await each.open()
    first, second = EpochGuard(stores[0], TIMEOUT), EpochGuard(stores[1], TIMEOUT)
    try:
        await first.open()
        await second.open()
        assert second.losses == 0 and second.lost_at is None
        assert second.known == first.known and second.cutoff == first.cutoff
    finally:
        await first.close()
        await second.close()
        await stores[0].discard()
        for each in stores:
            await each.close()


async def test_a_deleted_marker_is_a_loss_for_every_node(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    namespace = unique_namespace()
    stores = [RedisStore(redis_url, namespace, TIMEOUT, 2) for _ in range(2)]
    for each in stores:
        await each.open()
    first, second = EpochGuard(stores[0], TIMEOUT), EpochGuard(stores[1], TIMEOUT)
    try:
        await first.open()
        await second.open()
        old = first.known
        assert old is not None
        await stores[0].client.execute("DEL", stores[0].epoch_key)
        lost = time.time()
        # The marker rides along with each revocation check: not trusted from now on.
        state = await stores[0].revocation_state("jti", "user1", time.time())
        assert state.is_blocked
        with caplog.at_level(logging.ERROR, "targets.epochs"):
            await first.check()
        assert first.known is not None and first.known.epoch != old.epoch
        assert first.cutoff >= lost and first.losses == 2  # its start, then this
        assert "the revocation marker is gone" in caplog.text
        # The other node finds the replaced marker: it adopts it and cuts off as well.
        await second.check()
        assert second.known is not None and second.known.epoch == first.known.epoch
        assert second.cutoff >= first.cutoff and second.losses == 1
        assert "another node replaced" in (second.loss_reason or "")
        stored, _ = await stores[0].read_epoch()
        assert stored is not None and stored.cutoff == max(first.cutoff, second.cutoff)
        # ...and the revocation checks trust the new marker again.
        await first.check()
        assert not (await stores[0].revocation_state("jti", "user1", time.time())).is_blocked
    finally:
        await first.close()
        await second.close()
        await stores[0].discard()
        for each in stores:
            await each.close()


async def test_a_cutoff_raised_by_another_node_is_adopted_from_the_revocation_check(
    redis_url: str,
) -> None:
    store = RedisStore(redis_url, unique_namespace(), TIMEOUT, 2)
    await store.open()
    guard = EpochGuard(store, TIMEOUT)
    try:
        await guard.open()
        assert guard.known is not None
        later = guard.cutoff + 5.0
        await store.raise_epoch_cutoff(guard.known.epoch, later)
        state = await store.revocation_state("jti", "user1", time.time())
        assert not state.is_blocked  # the same epoch: still trusted...
        assert guard.cutoff == later  # ...and its new cutoff holds here at once
    finally:
        await guard.close()
        await store.discard()
        await store.close()


async def test_nodes_racing_to_replace_a_lost_marker_agree_on_one(redis_url: str) -> None:
    namespace = unique_namespace()
    stores = [RedisStore(redis_url, namespace, TIMEOUT, 2) for _ in range(5)]
    guards = [EpochGuard(each, TIMEOUT) for each in stores]
    try:
        for each, guard in zip(stores, guards, strict=True):
            await each.open()
            await guard.open()
        await stores[0].client.execute("DEL", stores[0].epoch_key)
        lost = time.time()
        await asyncio.gather(*(guard.check() for guard in guards))
        epochs = {guard.known.epoch for guard in guards if guard.known is not None}
        assert len(epochs) == 1
        stored, _ = await stores[0].read_epoch()
        assert stored is not None and stored.epoch in epochs
        assert all(guard.cutoff >= lost for guard in guards)
        assert stored.cutoff == max(guard.cutoff for guard in guards)
    finally:
        for guard in guards:
            await guard.close()
        await stores[0].discard()
        for each in stores:
            await each.close()


@pytest.mark.parametrize("table", ["blocklist", "cutoffs"])
async def test_a_truncated_postgres_table_is_a_loss(postgres_url: str, table: str) -> None:
    store = PostgresStore(postgres_url, unique_namespace(), TIMEOUT, 2)
    await store.open()
    guard = EpochGuard(store, TIMEOUT)
    try:
        await guard.open()
        old = guard.known
        await store.block_token("revoked", time.time() + 60)
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f"TRUNCATE {store._ns}.{table}")
        finally:
            await conn.close()
        lost = time.time()
        await guard.check()
        assert guard.known is not None and old is not None and guard.known.epoch != old.epoch
        assert guard.cutoff >= lost and guard.losses == 2  # the start, then the TRUNCATE
    finally:
        await guard.close()
        await store.discard()
        await store.close()


# --- losses only a private redis-server may suffer ----------------------------------------


async def test_a_redis_restart_is_a_loss_even_when_a_snapshot_comes_back(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    store = RedisStore(server.url, "ab", TIMEOUT, 2)
    await store.open()
    guard = EpochGuard(store, TIMEOUT)
    try:
        await guard.open()
        old = guard.known
        with server.client() as client:
            client.save()  # the marker is in the dump the restart reloads...
        server.restart()
        marker, facts = await store.read_epoch()
        assert marker == old  # ...so it is still there, and looks intact
        assert facts.server_id != (old.server_id if old else None)
        await guard.check()
        assert guard.known is not None and old is not None and guard.known.epoch != old.epoch
        assert "Redis restarted" in (guard.loss_reason or "")
    finally:
        await guard.close()
        await store.close()


async def test_an_eviction_is_a_loss(start_redis: StartRedis) -> None:
    server = start_redis("--maxmemory-policy", "allkeys-lru")
    store = RedisStore(server.url, "ab", TIMEOUT, 2)
    await store.open()
    guard = EpochGuard(store, TIMEOUT)
    try:
        await guard.open()
        await store.block_token("revoked", time.time() + 600)
        with server.client(db=1) as client:
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", used + 256 * 1024)
            value = b"x" * 4096
            for batch in range(100):  # bounded: at most 10 MB written
                pipe = client.pipeline(transaction=False)
                for index in range(100):
                    pipe.set(f"junk:{batch}:{index}", value)
                pipe.execute()
                if int(client.info("stats")["evicted_keys"]) > 0:
                    break
            client.flushdb()
            client.config_set("maxmemory", 0)
        await guard.check()
        # Found by the eviction count, or by the marker itself when it was evicted too.
        assert guard.loss_reason is not None
        assert "evicted keys" in guard.loss_reason or "marker is gone" in guard.loss_reason
        assert guard.losses == 2
        await guard.check()  # no eviction since the new marker: no new loss
        assert guard.losses == 2
    finally:
        await guard.close()
        await store.close()


async def test_flushall_is_found_by_the_heartbeat(start_redis: StartRedis) -> None:
    server = start_redis()
    store = RedisStore(server.url, "ab", FAST, 2)
    await store.open()
    guard = EpochGuard(store, FAST, heartbeat=FAST)
    try:
        await guard.open()
        with server.client() as client:
            client.flushall()
        await wait_until(lambda: guard.losses == 2, "the heartbeat to find the loss")
        assert (await store.read_epoch())[0] == guard.known
    finally:
        await guard.close()
        await store.close()


async def test_a_guard_that_cannot_check_fails_closed_then_recovers(
    start_redis: StartRedis,
) -> None:
    server = start_redis()
    store = RedisStore(server.url, "ab", FAST, 2)
    await store.open()
    guard = EpochGuard(store, FAST, heartbeat=FAST)
    try:
        await guard.open()
        guard.ensure_checked()
        working = store.client.address
        await store.client.close()
        store.client.address = RedisAddress(port=closed_port())
        with pytest.raises(StoreUnavailable):
            for _ in range(100):  # bounded: a few times the stale limit
                guard.ensure_checked()
                await asyncio.sleep(0.02)
        store.client.address = working
        await wait_until(lambda: guard.describe()["checked_s_ago"] < FAST * 2, "a check")
        guard.ensure_checked()
        assert guard.losses == 1  # nothing was lost meanwhile
    finally:
        await guard.close()
        await store.close()
