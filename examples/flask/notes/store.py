"""Where server-side state lives: the process's memory, or Redis under a key prefix.

Both stores expire every key they hold, so a session or a blocklist entry never
outlives its TTL. Redis errors are left to propagate: the app turns them into 503.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

import redis

STORE_TIMEOUT_S = 0.5  # every Redis call fails within this, so requests fail fast
SWEEP_EVERY = 1000  # writes between sweeps of expired entries in memory


class Store(Protocol):
    """Expiring keys and short lists; keys are relative to the store's namespace."""

    def set(self, key: str, value: str, ttl_s: int) -> None:
        """Store value under key for ttl_s seconds."""

    def get(self, key: str) -> str | None:
        """The value under key, or None when absent or expired."""

    def get_and_touch(self, key: str, ttl_s: int) -> str | None:
        """The value under key, its TTL reset to ttl_s (one round trip)."""

    def delete(self, key: str) -> None:
        """Remove key (absent keys are fine)."""

    def push(self, key: str, value: str, keep: int, ttl_s: int) -> None:
        """Prepend value to the list under key, keep the newest `keep`, expire in ttl_s."""

    def is_healthy(self) -> bool:
        """True when the store answers."""


class MemoryStore:
    """This process's memory: not shared, so only right with a single gunicorn worker."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float]] = {}
        self._lists: dict[str, tuple[deque[str], float]] = {}
        self._lock = threading.Lock()  # gunicorn's gthread workers share the dicts
        self._writes = 0

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            now = time.monotonic()
            for key in [k for k, (_, at) in self._values.items() if at <= now]:
                del self._values[key]
            for key in [k for k, (_, at) in self._lists.items() if at <= now]:
                del self._lists[key]

    def set(self, key: str, value: str, ttl_s: int) -> None:
        with self._lock:
            self._values[key] = (value, time.monotonic() + ttl_s)
            self._wrote()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._values.get(key)
            if entry is None or entry[1] <= time.monotonic():
                return None
            return entry[0]

    def get_and_touch(self, key: str, ttl_s: int) -> str | None:
        with self._lock:
            entry = self._values.get(key)
            now = time.monotonic()
            if entry is None or entry[1] <= now:
                return None
            self._values[key] = (entry[0], now + ttl_s)
            return entry[0]

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def push(self, key: str, value: str, keep: int, ttl_s: int) -> None:
        with self._lock:
            entry = self._lists.get(key)
            items = entry[0] if entry is not None else deque(maxlen=keep)
            items.appendleft(value)
            self._lists[key] = (items, time.monotonic() + ttl_s)
            self._wrote()

    def is_healthy(self) -> bool:
        return True


class RedisStore:
    """Redis, every key under `<namespace>:`; shared by every worker and node."""

    def __init__(self, url: str, namespace: str) -> None:
        self._prefix = f"{namespace}:"
        self._redis = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=STORE_TIMEOUT_S,
            socket_connect_timeout=STORE_TIMEOUT_S, max_connections=32,
        )

    def set(self, key: str, value: str, ttl_s: int) -> None:
        self._redis.set(self._prefix + key, value, ex=ttl_s)

    def get(self, key: str) -> str | None:
        return _text(self._redis.get(self._prefix + key))

    def get_and_touch(self, key: str, ttl_s: int) -> str | None:
        return _text(self._redis.getex(self._prefix + key, ex=ttl_s))

    def delete(self, key: str) -> None:
        self._redis.delete(self._prefix + key)

    def push(self, key: str, value: str, keep: int, ttl_s: int) -> None:
        name = self._prefix + key
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(name, value)
            pipe.ltrim(name, 0, keep - 1)
            pipe.expire(name, ttl_s)
            pipe.execute()

    def is_healthy(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False


def _text(value: object) -> str | None:
    # redis-py types its answers loosely; with decode_responses they are str or None.
    return value if isinstance(value, str) else None


def make_store(redis_url: str | None, namespace: str) -> Store:
    """Redis when a URL is given, else this process's memory."""
    return RedisStore(redis_url, namespace) if redis_url else MemoryStore()
