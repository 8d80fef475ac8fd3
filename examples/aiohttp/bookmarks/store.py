"""State in this process's memory: expiring maps (sessions, refresh tokens) and bookmarks.

Memory only, so the app runs as one process: a second process would not see the first's
sessions, refresh tokens or bookmarks.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from itertools import islice
from typing import Any, Generic, TypeVar

V = TypeVar("V")
SWEEP_EVERY = 1000  # writes between sweeps of expired entries
BOOKMARKS_KEPT = 100  # per user, newest first
BOOKMARKS_LISTED = 10  # what a listing shows
SEEDED_BOOKMARKS = 10  # every user starts with these, so each listing has the same work
DEMO_USER = "demo"  # the public listing's owner; not a login name


class ExpiringMap(Generic[V]):
    """A dict whose entries expire after their TTL (monotonic clock); expired ones are swept."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[V, float]] = {}
        self._writes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: str, value: V, ttl_s: float) -> None:
        """Store value under key for ttl_s seconds."""
        self._entries[key] = (value, time.monotonic() + ttl_s)
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            self._sweep()

    def get(self, key: str) -> V | None:
        """The value under key, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[0]

    def touch(self, key: str, ttl_s: float) -> None:
        """Give a present entry ttl_s more seconds from now."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], time.monotonic() + ttl_s)

    def pop(self, key: str) -> None:
        """Remove key (absent keys are fine)."""
        self._entries.pop(key, None)

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [key for key, (_, expires_at) in self._entries.items() if expires_at <= now]:
            del self._entries[key]


class BookmarkStore:
    """Each user's newest bookmarks; a user's list is seeded the first time it is read."""

    def __init__(self) -> None:
        self._lists: dict[str, deque[dict[str, Any]]] = {}

    def listing(self, username: str) -> dict[str, Any]:
        """The user's newest bookmarks, as GET /bookmarks answers them."""
        items = self._list(username)
        newest = list(islice(items, BOOKMARKS_LISTED))
        return {"user": username, "bookmarks": newest, "total": len(items)}

    def add(self, username: str, url: str, title: str) -> dict[str, Any]:
        """Prepend a bookmark to the user's list (the oldest beyond the cap drop); return it."""
        bookmark = {"id": secrets.token_hex(8), "url": url, "title": title,
                    "created": int(time.time())}
        self._list(username).appendleft(bookmark)
        return bookmark

    def _list(self, username: str) -> deque[dict[str, Any]]:
        items = self._lists.get(username)
        if items is None:
            items = self._lists[username] = deque(_seed(username), maxlen=BOOKMARKS_KEPT)
        return items


def _seed(username: str) -> list[dict[str, Any]]:
    return [{"id": f"seed{number:02d}", "url": f"https://example.com/{username}/{number}",
             "title": f"Example page {number}", "created": 0}
            for number in range(SEEDED_BOOKMARKS)]
