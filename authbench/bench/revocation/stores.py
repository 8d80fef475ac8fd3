"""The stores bench-revocation measures: each opened in a private namespace, dropped after."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from authbench.bench.revocation.result import RevocationBenchConfig
from targets.stores import MemoryStore, PostgresStore, RedisStore, Store

STORE_TIMEOUT = 30.0  # one store call; counting a million keys is not a request
POOL_SIZE = 4
SCAN_DEADLINE = 120.0  # seconds to count a namespace's keys before giving up

COUNT_BLOCKLIST = "SELECT count(*) FROM {ns}.blocklist"  # ns: ours, ab_rb_<hex>
UNAVAILABLE = (*RedisStore.unavailable_errors, *PostgresStore.unavailable_errors)


class BenchError(RuntimeError):
    """A store gave an answer that makes the measurement meaningless."""


def new_jti() -> str:
    """A jti as the targets issue them."""
    return secrets.token_urlsafe(16)


def _namespace() -> str:
    return f"ab_rb_{secrets.token_hex(5)}"


def raise_if_cancelled() -> None:
    """Honour a cancellation (Ctrl-C) that library code swallowed.

    Python 3.11's asyncio.wait_for drops a cancellation that lands just as its inner
    read completes (the Redis bulk loader reads in such a loop); the task still counts
    the request, so each step checks it and the run stops, dropping its namespaces.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass
class Meter:
    """A store in a private namespace, with its entry count and its bytes."""

    kind: str
    store: Store
    namespace: str
    postgres_url: str = ""

    async def entries(self) -> int:
        store = self.store
        if isinstance(store, RedisStore):
            return len(await _redis_keys(store, f"{self.namespace}:bl:*"))
        if isinstance(store, PostgresStore):
            return int(await self._sql(COUNT_BLOCKLIST.format(ns=self.namespace)))
        assert isinstance(store, MemoryStore)
        return store.blocklist_size()

    async def used_bytes(self) -> int:
        """Redis and PostgreSQL now; the memory store's bytes come from its own pass."""
        if isinstance(self.store, RedisStore):
            info = (await self.store.client.execute("INFO", "memory")).decode()
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            return int(fields["used_memory"])
        if isinstance(self.store, PostgresStore):
            return int(await self._sql("SELECT pg_total_relation_size($1::regclass)",
                                       f"{self.namespace}.blocklist"))
        raise BenchError("the memory store's bytes are measured under tracemalloc")

    async def _sql(self, query: str, *args: object) -> Any:
        conn = await asyncpg.connect(self.postgres_url, timeout=STORE_TIMEOUT)
        try:
            return await conn.fetchval(query, *args, timeout=STORE_TIMEOUT)
        finally:
            await conn.close()


async def _redis_keys(store: RedisStore, pattern: str) -> set[bytes]:
    # A set: SCAN may return a key twice when the table is resized between calls.
    found: set[bytes] = set()
    cursor, deadline = b"0", time.monotonic() + SCAN_DEADLINE
    while time.monotonic() < deadline:
        cursor, keys = await store.client.execute("SCAN", cursor, "MATCH", pattern,
                                                  "COUNT", 10_000)
        found.update(keys)
        if cursor == b"0":
            return found
    raise BenchError(f"counting {pattern} took more than {SCAN_DEADLINE:.0f} s")


def _make_store(kind: str, config: RevocationBenchConfig, namespace: str) -> Store:
    if kind == "redis":
        return RedisStore(config.redis_url, namespace, STORE_TIMEOUT, POOL_SIZE)
    if kind == "postgres":
        return PostgresStore(config.postgres_url, namespace, STORE_TIMEOUT, POOL_SIZE)
    return MemoryStore()


@contextlib.asynccontextmanager
async def private_store(kind: str, config: RevocationBenchConfig) -> AsyncIterator[Meter]:
    """An opened store in a namespace of its own, dropped on the way out (errors, Ctrl-C)."""
    namespace = _namespace()
    store = _make_store(kind, config, namespace)
    try:
        await store.open()
    except store.unavailable_errors:
        await store.close()
        raise
    try:
        yield Meter(kind, store, namespace, config.postgres_url)
    finally:
        try:
            await store.discard()
        finally:
            await store.close()

