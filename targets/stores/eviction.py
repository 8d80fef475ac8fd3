"""At start: refuse a Redis that may evict the blocklist or the sessions.

Under maxmemory, every policy but noeviction drops keys to make room: allkeys-* any
key, volatile-* keys with a TTL, which blocklist entries, cutoffs, sessions and refresh
tokens all have. An evicted blocklist entry silently makes a revoked token valid again,
so a target refuses such a Redis unless STORE_ALLOW_EVICTION=1 says to run anyway (to
measure it, say); every eviction is then treated as lost revocation state.
"""

from __future__ import annotations

import logging
from typing import Any

from targets.stores.base import Store, StoreFacts, UnsafeStore
from targets.stores.redis_store import RedisStore
from targets.stores.resp import RespError

log = logging.getLogger("targets.eviction")

FIX = ("fix it with `CONFIG SET maxmemory-policy noeviction` (or `CONFIG SET maxmemory 0`), "
       "or set STORE_ALLOW_EVICTION=1 to start anyway (every eviction then counts as lost "
       "revocation state, and evicted sessions log users out)")


def eviction_problem(facts: StoreFacts, where: str) -> str | None:
    """Why this store may evict what the target keeps, or None."""
    if not facts.can_evict:
        return None
    return (f"Redis at {where} may evict keys: maxmemory-policy is {facts.maxmemory_policy} "
            f"with maxmemory {facts.maxmemory} bytes, so blocklist entries and sessions can "
            "be dropped and revoked tokens silently become valid again")


async def check_eviction(store: Store, is_allowed: bool) -> dict[str, Any]:
    """Raise UnsafeStore for a store that may evict, unless allowed; return what ran."""
    where = store.client.where if isinstance(store, RedisStore) else store.kind
    try:
        facts = await store.facts()
    except RespError as exc:  # INFO refused (an ACL, a renamed command): cannot tell
        if not is_allowed:
            raise UnsafeStore(f"cannot read the maxmemory-policy of Redis at {where} "
                              f"(INFO: {exc}); allow INFO, or {FIX}") from None
        log.warning("cannot read the maxmemory-policy of Redis at %s (INFO: %s); "
                    "starting because STORE_ALLOW_EVICTION=1", where, exc)
        facts = StoreFacts()
    problem = eviction_problem(facts, where)
    if problem is not None:
        if not is_allowed:
            raise UnsafeStore(f"{problem}; {FIX}")
        log.warning("%s; starting anyway because STORE_ALLOW_EVICTION=1", problem)
    return {
        "kind": store.kind,
        "maxmemory": facts.maxmemory,
        "maxmemory_policy": facts.maxmemory_policy,
        "can_evict": facts.can_evict,
        "eviction_allowed": is_allowed,
    }
