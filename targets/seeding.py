"""Bulk seeding: put many live sessions in a store before a run (the load phase)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

from targets.modes.base import hash_secret
from targets.settings import Settings
from targets.stores import SessionRecord, Store


def generate_sessions(
    count: int, users: int, idle_ttl: int, absolute_ttl: int, now: float | None = None
) -> Iterator[tuple[str, SessionRecord]]:
    """count fresh sessions spread round-robin over user0..user<users-1>."""
    started = time.time() if now is None else now
    idle, absolute = started + idle_ttl, started + absolute_ttl
    csrf = secrets.token_urlsafe(32)  # seeded sessions are never used for writes
    for i in range(count):
        key = hash_secret(secrets.token_urlsafe(32))
        yield key, SessionRecord(f"user{i % users}", csrf, started, idle, absolute)


async def seed_sessions(store: Store, count: int, settings: Settings) -> int:
    """Put count live sessions into store through its bulk path; return how many."""
    return await store.seed_sessions(
        generate_sessions(
            count, settings.seed_users, settings.session_idle_ttl, settings.session_absolute_ttl
        )
    )
