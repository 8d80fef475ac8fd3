"""Fill a store as the targets would, through their own bulk paths, under benchmark keys."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from authbench.bench.storeceiling.operations import DEFAULTS, blocked_jti, session_key
from targets.seeding import generate_sessions
from targets.stores import Epoch, SessionRecord, Store

T = TypeVar("T")
BLOCKLIST_LIFE_S = 3600.0  # entries outlive the measurement


def sessions(count: int) -> Iterator[tuple[str, SessionRecord]]:
    """count live sessions as the targets make them, keyed by session_key(i)."""
    made = generate_sessions(count, DEFAULTS.seed_users, DEFAULTS.session_idle_ttl,
                             DEFAULTS.session_absolute_ttl)
    for index, (_, record) in enumerate(made):
        # A fresh CSRF token each, as a login makes (generate_sessions shares one).
        yield session_key(index), replace(record, csrf=secrets.token_urlsafe(32))


def blocklist(count: int) -> Iterator[tuple[str, float]]:
    """count blocklisted jtis, none of them one the benchmark asks about."""
    expires = time.time() + BLOCKLIST_LIFE_S
    for index in range(count):
        yield blocked_jti(index), expires


async def fill(store: Store, count: int, server_id: str | None = None) -> dict[str, Any]:
    """count sessions, count blocklist entries and a revocation marker; what was loaded."""
    loaded = await store.seed_sessions(sessions(count))
    blocked = await store.seed_blocklist(blocklist(count))
    now = time.time()
    # The marker a target's epoch guard writes (Redis: the server's run_id, 0 evicted).
    marker = Epoch(secrets.token_hex(8), now, now, server_id, 0 if server_id else None)
    await store.replace_epoch(None, marker)
    return {"sessions": loaded, "blocklist": blocked, "revocation_marker": True,
            "users": DEFAULTS.seed_users}


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to its end on a fresh event loop (the callers are synchronous)."""
    with asyncio.Runner() as runner:
        return runner.run(coroutine)
