"""The Store protocol, against the real memory, Redis and PostgreSQL stores alike."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from targets.modes.base import hash_secret
from targets.seeding import generate_sessions
from targets.stores import (
    MemoryStore,
    PostgresStore,
    RedisStore,
    RefreshRecord,
    RevocationState,
    SessionRecord,
    Store,
)
from targets.stores.memory import ExpiringDict
from tests.support import unique_namespace

STORE_KINDS = ("memory", "redis", "postgres")
# Generous limits: the machine running the tests is shared and may be slow.
TIMEOUT = 5.0
POOL_SIZE = 25
RACERS = 20
NOT_REVOKED = RevocationState(is_blocked=False, cutoff=None)


def make(kind: str, url: str = "") -> Store:
    """A store of this kind in a namespace of its own, not yet opened."""
    if kind == "redis":
        return RedisStore(url, unique_namespace(), TIMEOUT, POOL_SIZE)
    if kind == "postgres":
        return PostgresStore(url, unique_namespace(), TIMEOUT, POOL_SIZE)
    return MemoryStore()


async def dispose(store: Store) -> None:
    """Remove everything the store holds in its namespace, then disconnect."""
    try:
        await store.discard()
    finally:
        await store.close()


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """An opened store of each kind, in a fresh namespace; emptied afterwards."""
    kind: str = request.param
    url = "" if kind == "memory" else request.getfixturevalue(f"{kind}_url")
    opened = make(kind, url)
    await opened.open()
    try:
        yield opened
    finally:
        await dispose(opened)


def new_key() -> str:
    """A store key as the modes make them: the hash of a random secret."""
    return hash_secret(secrets.token_urlsafe(32))


def session(user: str, now: float, idle: float = 60.0, absolute: float = 3600.0) -> SessionRecord:
    return SessionRecord(user, secrets.token_urlsafe(32), now, now + idle, now + absolute)


def user_name() -> str:
    return f"user-{secrets.token_hex(4)}"


# --- sessions -------------------------------------------------------------------------


async def test_created_session_reads_back_identical(store: Store) -> None:
    now = time.time()
    key, record = new_key(), session("alice", now)
    await store.create_session(key, record)
    assert await store.get_session(key, now) == record
    assert await store.get_session(key, now + 30) == record


async def test_unknown_session_is_none(store: Store) -> None:
    assert await store.get_session(new_key(), time.time()) is None


async def test_idle_timeout_ends_the_session(store: Store) -> None:
    now = time.time()
    key, record = new_key(), session("alice", now, idle=30, absolute=3600)
    await store.create_session(key, record)
    assert await store.get_session(key, now + 29.9) == record
    assert await store.get_session(key, now + 30) is None  # expiry instant is already dead
    assert await store.get_session(key, now + 31) is None


async def test_absolute_timeout_ends_the_session_even_when_touched(store: Store) -> None:
    now = time.time()
    key, record = new_key(), session("alice", now, idle=30, absolute=60)
    await store.create_session(key, record)
    await store.touch_session(key, record, now + 120)  # idle now reaches past absolute
    touched = await store.get_session(key, now + 59)
    assert touched is not None and touched.idle_expires == now + 120
    assert await store.get_session(key, now + 60) is None
    assert await store.get_session(key, now + 90) is None


async def test_session_stored_already_expired_is_never_returned(store: Store) -> None:
    now = time.time()
    idle_gone, absolute_gone = new_key(), new_key()
    created = now - 100
    await store.create_session(
        idle_gone, SessionRecord("alice", "c", created, now - 1, now + 3600)
    )
    await store.create_session(
        absolute_gone, SessionRecord("alice", "c", created, now + 60, now - 1)
    )
    assert await store.get_session(idle_gone, now) is None
    assert await store.get_session(absolute_gone, now) is None
    assert await store.list_sessions("alice", now) == []


async def test_touch_extends_the_idle_timeout(store: Store) -> None:
    now = time.time()
    key, record = new_key(), session("alice", now, idle=30, absolute=3600)
    await store.create_session(key, record)
    await store.touch_session(key, record, now + 90)
    touched = await store.get_session(key, now + 60)  # past the first idle expiry
    assert touched is not None
    assert touched.idle_expires == now + 90
    assert (touched.user, touched.csrf, touched.created) == (record.user, record.csrf, now)
    assert touched.absolute_expires == record.absolute_expires
    assert await store.get_session(key, now + 90) is None


async def test_touch_does_not_resurrect_a_deleted_session(store: Store) -> None:
    now = time.time()
    key, record = new_key(), session("alice", now)
    await store.create_session(key, record)
    assert await store.delete_session(key) is True
    await store.touch_session(key, record, now + 90)
    assert await store.get_session(key, now) is None


async def test_delete_session_is_true_then_false(store: Store) -> None:
    now = time.time()
    key = new_key()
    await store.create_session(key, session("alice", now))
    assert await store.delete_session(key) is True
    assert await store.get_session(key, now) is None
    assert await store.delete_session(key) is False
    assert await store.delete_session(new_key()) is False


async def test_list_sessions_shows_only_the_user_s_live_sessions(store: Store) -> None:
    now = time.time()
    alice, bob = user_name(), user_name()
    live = {new_key(): session(alice, now), new_key(): session(alice, now, idle=10)}
    for key, record in live.items():
        await store.create_session(key, record)
    await store.create_session(new_key(), SessionRecord(alice, "c", now - 100, now - 1, now + 60))
    bobs = new_key()
    await store.create_session(bobs, session(bob, now))

    assert dict(await store.list_sessions(alice, now)) == live
    assert await store.list_sessions(bob, now) == [(bobs, await store.get_session(bobs, now))]
    assert await store.list_sessions(user_name(), now) == []
    # Later, the short-idle session has timed out; after a delete, none is left.
    longer = [k for k, r in live.items() if r.idle_expires == now + 60]
    assert [k for k, _ in await store.list_sessions(alice, now + 20)] == longer
    assert await store.delete_session(longer[0]) is True
    assert await store.list_sessions(alice, now + 20) == []


async def test_delete_user_sessions_removes_all_and_counts_them(store: Store) -> None:
    now = time.time()
    alice, bob = user_name(), user_name()
    keys = [new_key() for _ in range(3)]
    for key in keys:
        await store.create_session(key, session(alice, now))
    bobs = new_key()
    await store.create_session(bobs, session(bob, now))

    assert await store.delete_user_sessions(alice) == 3
    for key in keys:
        assert await store.get_session(key, now) is None
    assert await store.list_sessions(alice, now) == []
    assert await store.get_session(bobs, now) is not None
    assert await store.delete_user_sessions(alice) == 0
    assert await store.count_sessions() == 1


async def test_seed_sessions_bulk_path(store: Store) -> None:
    count, users = 20_000, 100
    assert await store.count_sessions() == 0
    now = time.time()
    sessions = list(generate_sessions(count, users, 1800, 43200, now=now))
    assert await store.seed_sessions(iter(sessions)) == count
    assert await store.count_sessions() == count
    for key, record in (sessions[0], sessions[count // 2], sessions[-1]):
        assert await store.get_session(key, now + 1) == record
    listed = await store.list_sessions("user7", now + 1)
    assert len(listed) == count // users
    assert {record.user for _, record in listed} == {"user7"}
    assert await store.seed_sessions(iter([])) == 0


async def test_redis_seeding_gives_the_user_index_a_ttl(redis_url: str) -> None:
    # Sessions expire by TTL; their per-user index set must too, or it outlives them.
    namespace = unique_namespace()
    store = RedisStore(redis_url, namespace, TIMEOUT, POOL_SIZE)
    await store.open()
    try:
        now = time.time()
        await store.create_session(new_key(), session("user0", now, absolute=3600))
        assert await store.seed_sessions(generate_sessions(40, 4, 60, 120, now=now)) == 40
        long_lived = await store.client.execute("PTTL", f"{namespace}:us:user0")
        assert 120_000 < long_lived <= 3_600_000  # never shortened below a live session
        for user in ("user1", "user2", "user3"):
            ttl = await store.client.execute("PTTL", f"{namespace}:us:{user}")
            assert 60_000 < ttl <= 120_000, (user, ttl)
    finally:
        await dispose(store)


# --- JWT blocklist and per-user cutoff ----------------------------------------------------


async def test_blocked_token_is_blocked_and_others_are_not(store: Store) -> None:
    now = time.time()
    jti, other = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    assert await store.revocation_state(jti, "alice", now) == NOT_REVOKED
    await store.block_token(jti, now + 60)
    assert await store.revocation_state(jti, "alice", now) == RevocationState(True, None)
    assert await store.revocation_state(jti, "bob", now + 59) == RevocationState(True, None)
    assert await store.revocation_state(other, "alice", now) == NOT_REVOKED


async def test_seed_blocklist_blocks_like_block_token(store: Store) -> None:
    now = time.time()
    entries = [(secrets.token_urlsafe(16), now + 600) for _ in range(25_000)]
    assert await store.seed_blocklist(iter(entries)) == len(entries)
    for jti, _ in (entries[0], entries[12_345], entries[-1]):
        assert await store.revocation_state(jti, "alice", now) == RevocationState(True, None)
    assert await store.revocation_state(secrets.token_urlsafe(16), "alice", now) == NOT_REVOKED
    assert await store.seed_blocklist(iter([])) == 0


async def test_seed_blocklist_keeps_a_jti_already_blocked(store: Store) -> None:
    now = time.time()
    jti = secrets.token_urlsafe(16)
    await store.block_token(jti, now + 60)
    assert await store.seed_blocklist([(jti, now + 60), (jti, now + 60)]) == 2
    assert await store.revocation_state(jti, "alice", now) == RevocationState(True, None)


async def test_redis_seed_blocklist_writes_what_block_token_writes(redis_url: str) -> None:
    namespace = unique_namespace()
    store = RedisStore(redis_url, namespace, TIMEOUT, POOL_SIZE)
    await store.open()
    try:
        now = time.time()
        await store.block_token("one", now + 60)
        await store.seed_blocklist([("two", now + 60)])
        for jti in ("one", "two"):
            key = f"{namespace}:bl:{jti}"
            assert await store.client.execute("GET", key) == b"1"
            assert 55_000 < await store.client.execute("PTTL", key) <= 60_000
    finally:
        await dispose(store)


async def test_user_cutoff_is_reported_and_can_move(store: Store) -> None:
    now = time.time()
    alice, bob = user_name(), user_name()
    jti = secrets.token_urlsafe(16)
    await store.set_user_cutoff(alice, now - 5, now + 60)
    assert await store.revocation_state(jti, alice, now) == RevocationState(False, now - 5)
    assert await store.revocation_state(jti, bob, now) == NOT_REVOKED
    await store.set_user_cutoff(alice, now, now + 120)  # a later logout-everywhere
    assert await store.revocation_state(jti, alice, now) == RevocationState(False, now)
    await store.block_token(jti, now + 60)
    assert await store.revocation_state(jti, alice, now) == RevocationState(True, now)


async def test_a_cutoff_never_moves_back(store: Store) -> None:
    """Two logouts-everywhere landing out of order: the later cutoff still holds."""
    now = time.time()
    user = user_name()
    await store.set_user_cutoff(user, now, now + 120)
    await store.set_user_cutoff(user, now - 30, now + 90)  # older, written last
    assert (await store.revocation_state("x", user, now)).cutoff == now


def test_putting_the_same_entry_again_does_not_grow_the_expiry_heap() -> None:
    table = ExpiringDict()
    for _ in range(5):  # a reload, a node hearing its own revocation...
        table.put("jti", True, 100.0)
    table.put("jti", True, 200.0)  # a new expiry is a new heap entry
    assert len(table._heap) == 2 and table.get("jti", 150.0) is True
    table.purge(250.0)
    assert table.values == {} and table._heap == []


# --- refresh tokens -----------------------------------------------------------------------


async def test_refresh_token_first_use_then_replay(store: Store) -> None:
    now = time.time()
    key = new_key()
    record = RefreshRecord("family-1", "alice", now + 600)
    await store.put_refresh(key, record)
    first = await store.use_refresh(key, now)
    assert first == record
    assert first is not None and first.is_used is False
    second = await store.use_refresh(key, now + 1)
    assert second == RefreshRecord("family-1", "alice", now + 600, is_used=True)
    third = await store.use_refresh(key, now + 2)
    assert third is not None and third.is_used is True  # stays used
    assert await store.use_refresh(new_key(), now) is None


async def test_use_refresh_is_atomic_under_concurrency(store: Store) -> None:
    now = time.time()
    for round_ in range(3):
        key = new_key()
        await store.put_refresh(key, RefreshRecord(f"family-{round_}", "alice", now + 600))
        results = await asyncio.gather(*(store.use_refresh(key, now) for _ in range(RACERS)))
        assert all(r is not None for r in results), results
        fresh = [r for r in results if r is not None and not r.is_used]
        assert len(fresh) == 1, f"round {round_}: {len(fresh)} callers saw the token unused"
        assert fresh[0] == RefreshRecord(f"family-{round_}", "alice", now + 600)


# --- expiry of every kind of entry --------------------------------------------------------


async def _time_passes(store: Store, deadline: float) -> float:
    """A `now` past deadline. Redis expires keys by its own TTL clock, so wait for real."""
    if store.kind != "redis":
        return deadline + 0.1
    for _ in range(40):  # bounded: at most ~2 s
        if time.time() > deadline + 0.1:
            break
        await asyncio.sleep(0.05)
    now = time.time()
    assert now > deadline
    return now


async def test_expired_entries_no_longer_count(store: Store) -> None:
    now = time.time()
    expires = now + 1.0  # Redis is tested with a real TTL of about a second
    alice = user_name()
    session_key = new_key()
    await store.create_session(session_key, SessionRecord(alice, "c", now, expires, now + 3600))
    jti = secrets.token_urlsafe(16)
    await store.block_token(jti, expires)
    await store.set_user_cutoff(alice, now, expires)
    unused, spent = new_key(), new_key()
    await store.put_refresh(unused, RefreshRecord("f", alice, expires))
    await store.put_refresh(spent, RefreshRecord("f", alice, expires))
    assert await store.use_refresh(spent, now) is not None
    assert await store.revocation_state(jti, alice, now) == RevocationState(True, now)
    assert await store.get_session(session_key, now) is not None

    later = await _time_passes(store, expires)

    assert await store.get_session(session_key, later) is None
    assert await store.list_sessions(alice, later) == []
    assert await store.revocation_state(jti, alice, later) == NOT_REVOKED
    assert await store.use_refresh(unused, later) is None
    assert await store.use_refresh(spent, later) is None


async def test_seeded_blocklist_entries_expire_like_blocked_ones(store: Store) -> None:
    now = time.time()
    expires = now + 1.0
    short, long = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    assert await store.seed_blocklist([(short, expires), (long, now + 600)]) == 2
    assert await store.revocation_state(short, "alice", now) == RevocationState(True, None)

    later = await _time_passes(store, expires)

    assert await store.revocation_state(short, "alice", later) == NOT_REVOKED
    assert await store.revocation_state(long, "alice", later) == RevocationState(True, None)


# --- clear --------------------------------------------------------------------------------


async def test_clear_empties_only_its_own_namespace(store: Store) -> None:
    url = store.url if isinstance(store, RedisStore | PostgresStore) else ""
    other = make(store.kind, url)
    await other.open()
    try:
        now = time.time()
        key, jti, refresh = new_key(), secrets.token_urlsafe(16), new_key()
        for each in (store, other):
            await each.create_session(key, session("alice", now))
            await each.block_token(jti, now + 60)
            await each.set_user_cutoff("alice", now, now + 60)
            await each.put_refresh(refresh, RefreshRecord("f", "alice", now + 60))

        await store.clear()

        assert await store.count_sessions() == 0
        assert await store.get_session(key, now) is None
        assert await store.list_sessions("alice", now) == []
        assert await store.revocation_state(jti, "alice", now) == NOT_REVOKED
        assert await store.use_refresh(refresh, now) is None

        assert await other.count_sessions() == 1
        assert await other.get_session(key, now) is not None
        assert len(await other.list_sessions("alice", now)) == 1
        assert await other.revocation_state(jti, "alice", now) == RevocationState(True, now)
        used = await other.use_refresh(refresh, now)
        assert used is not None and used.is_used is False

        await store.clear()  # clearing an empty namespace is fine
        assert await store.count_sessions() == 0
    finally:
        await dispose(other)


async def test_nodes_starting_together_create_one_schema(postgres_url: str) -> None:
    """The nodes of a cell open one fresh namespace at the same moment: none may fail."""
    namespace = unique_namespace()
    stores = [PostgresStore(postgres_url, namespace, 5.0, 2) for _ in range(6)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        await stores[0].create_session("k", SessionRecord("u", "c", 0, 2e9, 2e9))
        assert await stores[5].count_sessions() == 1
    finally:
        await stores[0].discard()
        for store in stores:
            await store.close()
