"""Session, blocklist and refresh-token stores: memory, Redis and PostgreSQL."""

from targets.settings import Settings
from targets.stores.base import (
    Epoch,
    RefreshRecord,
    RevocationState,
    SessionRecord,
    Store,
    StoreFacts,
    StoreUnavailable,
    UnsafeStore,
)
from targets.stores.epochs import EpochGuard
from targets.stores.eviction import check_eviction
from targets.stores.memory import MemoryStore
from targets.stores.postgres import PostgresStore
from targets.stores.redis_store import RedisStore

__all__ = [
    "Epoch",
    "EpochGuard",
    "MemoryStore",
    "PostgresStore",
    "RedisStore",
    "RefreshRecord",
    "RevocationState",
    "SessionRecord",
    "Store",
    "StoreFacts",
    "StoreUnavailable",
    "UnsafeStore",
    "check_eviction",
    "make_store",
]


def make_store(settings: Settings) -> Store:
    """The store named by STORE, not yet connected (call open())."""
    if settings.store == "redis":
        return RedisStore(
            settings.store_url, settings.store_namespace,
            settings.store_timeout, settings.store_pool_size,
        )
    if settings.store == "postgres":
        return PostgresStore(
            settings.store_url, settings.store_namespace,
            settings.store_timeout, settings.store_pool_size,
        )
    return MemoryStore()
