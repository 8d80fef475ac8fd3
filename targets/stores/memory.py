"""A per-process store in plain dicts: the fastest, and invisible to other nodes."""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable
from dataclasses import replace

from targets.stores.base import (
    Epoch,
    RefreshRecord,
    RevocationState,
    SessionRecord,
    StoreFacts,
    StoreUnavailable,
)

_NOT_BLOCKED = RevocationState(is_blocked=False, cutoff=None)


class ExpiringDict:
    """A dict whose entries carry an expiry; expired ones are purged as new ones arrive."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[float, object]] = {}
        self._heap: list[tuple[float, str]] = []

    def put(self, key: str, value: object, expires: float) -> None:
        old = self.values.get(key)
        self.values[key] = (expires, value)
        # A heap entry per key and expiry: putting the same entry again (a reload, a node
        # hearing its own revocation) must not grow the heap.
        if old is None or old[0] != expires:
            heapq.heappush(self._heap, (expires, key))

    def get(self, key: str, now: float) -> object | None:
        entry = self.values.get(key)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def purge(self, now: float) -> None:
        heap, values = self._heap, self.values
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            entry = values.get(key)
            if entry is not None and entry[0] <= now:
                del values[key]


class RevocationTables:
    """Blocked jtis and per-user cutoffs held in this process, each until its expiry."""

    def __init__(self) -> None:
        self.blocked = ExpiringDict()
        self.cutoffs = ExpiringDict()

    def block(self, jti: str, expires: float) -> None:
        self.blocked.put(jti, True, expires)

    def cut_off(self, user: str, cutoff: float, expires: float) -> None:
        """Record a cutoff, unless a later one already holds."""
        current = self.cutoffs.get(user, time.time())
        if isinstance(current, float) and current > cutoff:
            return
        self.cutoffs.put(user, float(cutoff), expires)

    def state(self, jti: str, user: str, now: float) -> RevocationState:
        blocked = self.blocked.get(jti, now) is not None
        cutoff = self.cutoffs.get(user, now)
        if not blocked and cutoff is None:
            return _NOT_BLOCKED
        return RevocationState(blocked, cutoff if isinstance(cutoff, float) else None)

    def purge(self, now: float) -> None:
        self.blocked.purge(now)
        self.cutoffs.purge(now)


class MemoryStore:
    """Everything in this process's memory; nothing survives a restart."""

    kind = "memory"
    unavailable_errors: tuple[type[BaseException], ...] = (StoreUnavailable,)

    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._by_user: dict[str, set[str]] = {}
        self._revoked = RevocationTables()
        self._refresh = ExpiringDict()
        self._epoch: Epoch | None = None  # none at start: a new process has lost everything
        self._writes = 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    async def discard(self) -> None:
        await self.clear()

    def _purge_sometimes(self) -> None:
        # Amortised clean-up: every 1024 writes, drop what has expired.
        self._writes += 1
        if self._writes & 1023 == 0:
            now = time.time()
            self._revoked.purge(now)
            self._refresh.purge(now)
            dead = [k for k, r in self._sessions.items() if not r.is_live(now)]
            for key in dead:
                self._forget_session(key)

    def _forget_session(self, key: str) -> bool:
        record = self._sessions.pop(key, None)
        if record is None:
            return False
        keys = self._by_user.get(record.user)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_user[record.user]
        return True

    async def create_session(self, key: str, record: SessionRecord) -> None:
        self._purge_sometimes()
        self._sessions[key] = record
        self._by_user.setdefault(record.user, set()).add(key)

    async def get_session(self, key: str, now: float) -> SessionRecord | None:
        record = self._sessions.get(key)
        if record is None:
            return None
        if not record.is_live(now):
            self._forget_session(key)
            return None
        return record

    async def touch_session(self, key: str, record: SessionRecord, idle_expires: float) -> None:
        if key in self._sessions:
            self._sessions[key] = replace(record, idle_expires=idle_expires)

    async def delete_session(self, key: str) -> bool:
        return self._forget_session(key)

    async def list_sessions(self, user: str, now: float) -> list[tuple[str, SessionRecord]]:
        live = []
        for key in list(self._by_user.get(user, ())):
            record = await self.get_session(key, now)
            if record is not None:
                live.append((key, record))
        return live

    async def delete_user_sessions(self, user: str) -> int:
        keys = self._by_user.pop(user, set())
        for key in keys:
            self._sessions.pop(key, None)
        return len(keys)

    async def seed_sessions(self, sessions: Iterable[tuple[str, SessionRecord]]) -> int:
        count = 0
        for key, record in sessions:
            self._sessions[key] = record
            self._by_user.setdefault(record.user, set()).add(key)
            count += 1
        return count

    async def count_sessions(self) -> int:
        return len(self._sessions)

    def blocklist_size(self) -> int:
        """Blocklist entries held, expired ones not yet purged included."""
        return len(self._revoked.blocked.values)

    async def block_token(self, jti: str, expires: float) -> None:
        self._purge_sometimes()
        self._revoked.block(jti, expires)

    async def seed_blocklist(self, entries: Iterable[tuple[str, float]]) -> int:
        self._revoked.blocked.purge(time.time())
        count = 0
        for jti, expires in entries:
            self._revoked.block(jti, expires)
            count += 1
        return count

    async def set_user_cutoff(self, user: str, cutoff: float, expires: float) -> None:
        self._revoked.cut_off(user, cutoff, expires)

    async def revocation_state(self, jti: str, user: str, now: float) -> RevocationState:
        return self._revoked.state(jti, user, now)

    async def put_refresh(self, key: str, record: RefreshRecord) -> None:
        self._purge_sometimes()
        self._refresh.put(key, record, record.expires)

    async def use_refresh(self, key: str, now: float) -> RefreshRecord | None:
        record = self._refresh.get(key, now)
        if not isinstance(record, RefreshRecord):
            return None
        if not record.is_used:
            self._refresh.values[key] = (record.expires, replace(record, is_used=True))
        return record

    async def facts(self) -> StoreFacts:
        return StoreFacts()

    async def read_epoch(self) -> tuple[Epoch | None, StoreFacts]:
        return self._epoch, StoreFacts()

    async def replace_epoch(self, expected: Epoch | None, new: Epoch) -> Epoch | None:
        if self._epoch == expected:
            self._epoch = new
        return self._epoch

    async def raise_epoch_cutoff(self, epoch: str, cutoff: float) -> Epoch | None:
        current = self._epoch
        if current is not None and current.epoch == epoch and current.cutoff < cutoff:
            self._epoch = replace(current, cutoff=cutoff)
        return self._epoch
