"""PostgreSQL through an asyncpg pool: schema created at start, expired rows swept."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable
from itertools import islice
from urllib.parse import urlsplit

import asyncpg

from targets.stores.base import (
    Epoch,
    RefreshRecord,
    RevocationState,
    SessionRecord,
    StoreFacts,
    StoreUnavailable,
)
from targets.timing import store_call

SEED_BATCH = 50_000
SWEEP_INTERVAL = 30.0
OPEN_TIMEOUT = 10.0  # seconds for the first connection and the schema, at start
MAINTENANCE_TIMEOUT = 120.0  # sweeping, truncating, dropping: not on a request's path
_NAMESPACE = re.compile(r"[a-z_][a-z0-9_]{0,62}")

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {ns};
CREATE TABLE IF NOT EXISTS {ns}.sessions (
    key text PRIMARY KEY, user_id text NOT NULL, csrf text NOT NULL,
    created double precision NOT NULL, idle_expires double precision NOT NULL,
    absolute_expires double precision NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_user ON {ns}.sessions (user_id);
CREATE TABLE IF NOT EXISTS {ns}.blocklist (
    jti text PRIMARY KEY, expires double precision NOT NULL);
CREATE TABLE IF NOT EXISTS {ns}.cutoffs (
    user_id text PRIMARY KEY, cutoff double precision NOT NULL,
    expires double precision NOT NULL);
CREATE TABLE IF NOT EXISTS {ns}.refresh (
    key text PRIMARY KEY, family text NOT NULL, user_id text NOT NULL,
    expires double precision NOT NULL, used boolean NOT NULL DEFAULT false);
CREATE TABLE IF NOT EXISTS {ns}.revocation_epoch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch text NOT NULL, created double precision NOT NULL);
"""

# The revocation marker is three rows: the epoch itself, and a row under a reserved key
# ('#epoch': never a real jti or user name) that never expires in each revocation table.
# A TRUNCATE or a wholesale DELETE of either table takes its row, so the loss shows; the
# row in cutoffs also holds the global cutoff.
READ_EPOCH = """
SELECT e.epoch, e.created, c.cutoff,
       EXISTS (SELECT 1 FROM {ns}.blocklist WHERE jti = '#epoch')
FROM (SELECT 1) AS one
LEFT JOIN {ns}.revocation_epoch e ON true
LEFT JOIN {ns}.cutoffs c ON c.user_id = '#epoch'
"""
WRITE_EPOCH = """
WITH epoch AS (
    INSERT INTO {ns}.revocation_epoch (epoch, created) VALUES ($1, $2)
    ON CONFLICT (singleton) DO UPDATE SET epoch = EXCLUDED.epoch, created = EXCLUDED.created),
blocked AS (
    INSERT INTO {ns}.blocklist VALUES ('#epoch', 'Infinity')
    ON CONFLICT (jti) DO UPDATE SET expires = 'Infinity')
INSERT INTO {ns}.cutoffs VALUES ('#epoch', $3, 'Infinity')
ON CONFLICT (user_id) DO UPDATE SET cutoff = EXCLUDED.cutoff, expires = 'Infinity'
"""

SEED_BLOCKLIST = ("INSERT INTO {ns}.blocklist SELECT * FROM unnest($1::text[],"
                  " $2::double precision[]) ON CONFLICT (jti) DO NOTHING")


class PostgresStore:
    """Tables in schema <namespace>; queries filter on expiry, a task deletes old rows."""

    kind = "postgres"
    # Outages only: a SQL error is a bug, and must show as a 500, not as a 503.
    unavailable_errors: tuple[type[BaseException], ...] = (
        StoreUnavailable, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
        asyncpg.QueryCanceledError, asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError, OSError, TimeoutError,
        # A backend terminated mid-query can leave the client's protocol in a state it
        # reports this way: a store fault (503), not a server bug (500).
        asyncpg.InternalClientError,
    )

    def __init__(self, url: str, namespace: str, timeout: float, pool_size: int) -> None:
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(f"STORE_NAMESPACE={namespace!r}: use lower-case letters, digits, _")
        self.url = url
        self._ns = namespace
        self._timeout = timeout
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()

    async def _connect(self, first_timeout: float | None = None) -> asyncpg.Pool:
        # At start the first connection and the schema may take longer than one request
        # may wait (a busy machine); requests themselves keep the short STORE_TIMEOUT.
        wait = first_timeout or self._timeout
        async with self._connecting:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self.url,
                    min_size=1,
                    max_size=self._pool_size,
                    timeout=wait,
                    command_timeout=self._timeout,
                    # Names this target's backends, so a fault experiment can terminate
                    # exactly them (authbench/run/faults.py) and no one else's.
                    server_settings={"application_name": f"authbench:{self._ns}"},
                )
                try:
                    async with pool.acquire(timeout=wait) as conn, conn.transaction():
                        # The nodes of a cell start together, and CREATE ... IF NOT EXISTS
                        # is not safe against a twin running it at the same moment: one
                        # node at a time creates the schema.
                        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                                           f"authbench-schema:{self._ns}", timeout=wait)
                        await conn.execute(SCHEMA.format(ns=self._ns), timeout=wait)
                except BaseException:
                    await pool.close()  # no half-opened pool left behind
                    raise
                self._pool = pool
            return self._pool

    async def _pool_or_connect(self) -> asyncpg.Pool:
        pool = self._pool
        return pool if pool is not None else await self._connect()

    async def _fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        with store_call():
            pool = await self._pool_or_connect()
            async with pool.acquire(timeout=self._timeout) as conn:
                return await conn.fetchrow(query.format(ns=self._ns), *args)

    async def _fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        with store_call():
            pool = await self._pool_or_connect()
            async with pool.acquire(timeout=self._timeout) as conn:
                return await conn.fetch(query.format(ns=self._ns), *args)

    async def _execute(self, query: str, *args: object, limit: float | None = None) -> str:
        with store_call():
            pool = await self._pool_or_connect()
            async with pool.acquire(timeout=self._timeout) as conn:
                return str(await conn.execute(query.format(ns=self._ns), *args, timeout=limit))

    async def open(self) -> None:
        try:
            await self._connect(first_timeout=max(self._timeout, OPEN_TIMEOUT))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            where = urlsplit(self.url)  # host and port only: the URL may hold a password
            raise StoreUnavailable(
                f"PostgreSQL at {where.hostname}:{where.port or 5432}: {exc}"
            ) from exc
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            with contextlib.suppress(*self.unavailable_errors):
                await self.sweep(time.time())

    async def sweep(self, now: float) -> None:
        """Delete every expired row (queries already ignore them)."""
        for query in (
            "DELETE FROM {ns}.sessions WHERE idle_expires <= $1 OR absolute_expires <= $1",
            "DELETE FROM {ns}.blocklist WHERE expires <= $1",
            "DELETE FROM {ns}.cutoffs WHERE expires <= $1",
            "DELETE FROM {ns}.refresh WHERE expires <= $1",
        ):
            await self._execute(query, now, limit=MAINTENANCE_TIMEOUT)

    async def ping(self) -> None:
        await self._execute("SELECT 1")

    async def clear(self) -> None:
        await self._execute(
            "TRUNCATE {ns}.sessions, {ns}.blocklist, {ns}.cutoffs, {ns}.refresh",
            limit=MAINTENANCE_TIMEOUT,
        )

    async def discard(self) -> None:
        await self.drop()

    async def drop(self) -> None:
        """Remove the whole schema (tests use a schema of their own)."""
        await self._execute("DROP SCHEMA IF EXISTS {ns} CASCADE", limit=MAINTENANCE_TIMEOUT)

    async def create_session(self, key: str, record: SessionRecord) -> None:
        await self._execute(
            "INSERT INTO {ns}.sessions VALUES ($1, $2, $3, $4, $5, $6)",
            key, record.user, record.csrf, record.created,
            record.idle_expires, record.absolute_expires,
        )

    async def get_session(self, key: str, now: float) -> SessionRecord | None:
        row = await self._fetchrow(
            "SELECT user_id, csrf, created, idle_expires, absolute_expires"
            " FROM {ns}.sessions WHERE key = $1",
            key,
        )
        if row is None:
            return None
        record = SessionRecord(*row)
        return record if record.is_live(now) else None

    async def touch_session(self, key: str, record: SessionRecord, idle_expires: float) -> None:
        await self._execute(
            "UPDATE {ns}.sessions SET idle_expires = $2 WHERE key = $1", key, idle_expires
        )

    async def delete_session(self, key: str) -> bool:
        status = await self._execute("DELETE FROM {ns}.sessions WHERE key = $1", key)
        return status != "DELETE 0"

    async def list_sessions(self, user: str, now: float) -> list[tuple[str, SessionRecord]]:
        rows = await self._fetch(
            "SELECT key, user_id, csrf, created, idle_expires, absolute_expires"
            " FROM {ns}.sessions WHERE user_id = $1 AND idle_expires > $2"
            " AND absolute_expires > $2 ORDER BY key",
            user, now,
        )
        return [(row[0], SessionRecord(*row[1:])) for row in rows]

    async def delete_user_sessions(self, user: str) -> int:
        status = await self._execute("DELETE FROM {ns}.sessions WHERE user_id = $1", user)
        return int(status.split()[-1])

    async def seed_sessions(self, sessions: Iterable[tuple[str, SessionRecord]]) -> int:
        """Bulk load with COPY, SEED_BATCH rows at a time."""
        pool = await self._pool_or_connect()
        count = 0
        iterator = iter(sessions)
        while batch := list(islice(iterator, SEED_BATCH)):
            rows = [
                (key, r.user, r.csrf, r.created, r.idle_expires, r.absolute_expires)
                for key, r in batch
            ]
            async with pool.acquire(timeout=self._timeout) as conn:
                await conn.copy_records_to_table(
                    "sessions", schema_name=self._ns, records=rows, timeout=60
                )
            count += len(rows)
        return count

    async def count_sessions(self) -> int:
        row = await self._fetchrow("SELECT count(*) FROM {ns}.sessions")
        return int(row[0]) if row is not None else 0

    async def block_token(self, jti: str, expires: float) -> None:
        await self._execute(
            "INSERT INTO {ns}.blocklist VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            jti, expires,
        )

    async def seed_blocklist(self, entries: Iterable[tuple[str, float]]) -> int:
        """Bulk load with COPY, SEED_BATCH rows at a time.

        COPY is all-or-nothing, so a batch holding a jti already there goes in again by
        INSERT .. ON CONFLICT DO NOTHING, which keeps the old row as block_token does.
        """
        pool = await self._pool_or_connect()
        count = 0
        iterator = iter(entries)
        while batch := list(islice(iterator, SEED_BATCH)):
            async with pool.acquire(timeout=self._timeout) as conn:
                try:
                    # About twice as fast as the INSERT for a million rows.
                    await conn.copy_records_to_table(
                        "blocklist", schema_name=self._ns, records=batch, timeout=60
                    )
                except asyncpg.UniqueViolationError:
                    jtis, expiries = zip(*batch, strict=True)
                    await conn.execute(SEED_BLOCKLIST.format(ns=self._ns), list(jtis),
                                       list(expiries), timeout=60)
            count += len(batch)
        return count

    async def set_user_cutoff(self, user: str, cutoff: float, expires: float) -> None:
        await self._execute(
            "INSERT INTO {ns}.cutoffs VALUES ($1, $2, $3) ON CONFLICT (user_id)"
            " DO UPDATE SET cutoff = EXCLUDED.cutoff, expires = EXCLUDED.expires"
            " WHERE {ns}.cutoffs.cutoff < EXCLUDED.cutoff",  # a later cutoff always wins
            user, cutoff, expires,
        )

    async def revocation_state(self, jti: str, user: str, now: float) -> RevocationState:
        row = await self._fetchrow(
            "SELECT EXISTS (SELECT 1 FROM {ns}.blocklist WHERE jti = $1 AND expires > $3),"
            " (SELECT cutoff FROM {ns}.cutoffs WHERE user_id = $2 AND expires > $3)",
            jti, user, now,
        )
        assert row is not None
        return RevocationState(bool(row[0]), row[1])

    async def put_refresh(self, key: str, record: RefreshRecord) -> None:
        await self._execute(
            "INSERT INTO {ns}.refresh VALUES ($1, $2, $3, $4, $5)",
            key, record.family, record.user, record.expires, record.is_used,
        )

    async def use_refresh(self, key: str, now: float) -> RefreshRecord | None:
        # The row lock makes "was it used?" and "mark it used" one atomic step.
        row = await self._fetchrow(
            "WITH old AS (SELECT used FROM {ns}.refresh WHERE key = $1 AND expires > $2"
            " FOR UPDATE) UPDATE {ns}.refresh r SET used = true FROM old WHERE r.key = $1"
            " RETURNING r.family, r.user_id, r.expires, old.used",
            key, now,
        )
        return None if row is None else RefreshRecord(*row)

    async def facts(self) -> StoreFacts:
        return StoreFacts()  # a committed row survives a restart: nothing to watch here

    @staticmethod
    def _epoch_from(row: asyncpg.Record | None) -> Epoch | None:
        if row is None or row[0] is None or row[2] is None or not row[3]:
            return None  # absent, or a part of it gone: the same loss
        return Epoch(row[0], row[1], row[2])

    async def read_epoch(self) -> tuple[Epoch | None, StoreFacts]:
        return self._epoch_from(await self._fetchrow(READ_EPOCH)), StoreFacts()

    async def replace_epoch(self, expected: Epoch | None, new: Epoch) -> Epoch | None:
        with store_call():
            pool = await self._pool_or_connect()
            async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
                # Nodes that saw the loss together take turns: the first writes, the
                # others then find its marker.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                                   f"authbench-epoch:{self._ns}")
                current = self._epoch_from(await conn.fetchrow(READ_EPOCH.format(ns=self._ns)))
                is_expected = (current is None and expected is None) or (
                    current is not None and expected is not None
                    and current.epoch == expected.epoch)
                if not is_expected:
                    return current
                await conn.execute(WRITE_EPOCH.format(ns=self._ns),
                                   new.epoch, new.created, new.cutoff)
                return new

    async def raise_epoch_cutoff(self, epoch: str, cutoff: float) -> Epoch | None:
        await self._execute(
            "UPDATE {ns}.cutoffs SET cutoff = $2 WHERE user_id = '#epoch' AND cutoff < $2"
            " AND EXISTS (SELECT 1 FROM {ns}.revocation_epoch WHERE epoch = $1)",
            epoch, cutoff,
        )
        return self._epoch_from(await self._fetchrow(READ_EPOCH))
