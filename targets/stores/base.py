"""The one async protocol every store implements, and the records it keeps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import orjson


class StoreUnavailable(Exception):
    """The store did not answer in time or at all: the target fails closed with 503."""


class UnsafeStore(Exception):
    """The store is configured so that it may drop what the target relies on: no start."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session (or, in hybrid mode, a refresh-token family)."""

    user: str
    csrf: str
    created: float
    idle_expires: float
    absolute_expires: float

    def is_live(self, now: float) -> bool:
        """True while neither the idle nor the absolute timeout has passed."""
        return now < self.idle_expires and now < self.absolute_expires


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A hashed refresh token: its family (a session key), owner and expiry."""

    family: str
    user: str
    expires: float
    is_used: bool = False


@dataclass(frozen=True, slots=True)
class RevocationState:
    """What the store knows about an access token: blocklisted, and the user's cutoff."""

    is_blocked: bool
    cutoff: float | None


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """What a store's server says about itself (Redis INFO); None where it does not apply."""

    server_id: str | None = None  # Redis run_id: a new one at every Redis start
    evicted: int | None = None  # Redis evicted_keys: keys dropped under maxmemory so far
    maxmemory: int | None = None
    maxmemory_policy: str | None = None

    @property
    def can_evict(self) -> bool:
        """True when the server may drop keys to stay under its memory limit."""
        return bool(self.maxmemory) and self.maxmemory_policy not in (None, "noeviction")


@dataclass(frozen=True, slots=True)
class Epoch:
    """The durable marker of a store's revocation state, written once with no expiry.

    While the same marker stays in place, every revocation written since it was
    created is still in the store: whatever wipes the store's data (a restart without
    persistence, FLUSHALL, TRUNCATE, a deleted key) wipes the marker with it. In Redis
    it also records the server's run_id and eviction count, so a restart that reloaded
    an older snapshot, or an eviction, shows too. `cutoff` is the global cutoff: a
    token issued before it is revoked, whatever the blocklist says.
    """

    epoch: str
    created: float
    cutoff: float
    server_id: str | None = None
    evicted: int | None = None

    def to_json(self) -> bytes:
        """Its stored form in Redis (orjson: the same epoch always gives the same bytes)."""
        return orjson.dumps([self.epoch, self.created, self.cutoff, self.server_id,
                             self.evicted])

    @classmethod
    def from_json(cls, raw: bytes) -> Epoch:
        """Parse the stored form; ValueError when it is not a marker."""
        try:
            epoch, created, cutoff, server_id, evicted = orjson.loads(raw)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise ValueError(f"not a revocation marker: {exc}") from None
        if not (isinstance(epoch, str) and _is_number(created) and _is_number(cutoff)
                and (server_id is None or isinstance(server_id, str))
                and (evicted is None or isinstance(evicted, int))):
            raise ValueError("not a revocation marker: wrong field types")
        return cls(epoch, float(created), float(cutoff), server_id, evicted)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Store(Protocol):
    """Sessions, the JWT blocklist and refresh tokens, behind one interface.

    Keys are already hashed by the caller; times are Unix seconds. Every method
    raises StoreUnavailable (or one of `unavailable_errors`) when the backend fails.
    """

    kind: str
    unavailable_errors: tuple[type[BaseException], ...]

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def clear(self) -> None: ...
    async def discard(self) -> None:
        """Remove the whole namespace (keys, or the schema itself)."""
        ...

    async def create_session(self, key: str, record: SessionRecord) -> None: ...
    async def get_session(self, key: str, now: float) -> SessionRecord | None: ...
    async def touch_session(self, key: str, record: SessionRecord, idle_expires: float) -> None: ...
    async def delete_session(self, key: str) -> bool: ...
    async def list_sessions(self, user: str, now: float) -> list[tuple[str, SessionRecord]]: ...
    async def delete_user_sessions(self, user: str) -> int: ...
    async def seed_sessions(self, sessions: Iterable[tuple[str, SessionRecord]]) -> int: ...
    async def count_sessions(self) -> int: ...

    async def block_token(self, jti: str, expires: float) -> None: ...
    async def seed_blocklist(self, entries: Iterable[tuple[str, float]]) -> int:
        """Bulk-blocklist (jti, expires) pairs as block_token would; return how many."""
        ...

    async def set_user_cutoff(self, user: str, cutoff: float, expires: float) -> None: ...
    async def revocation_state(self, jti: str, user: str, now: float) -> RevocationState: ...

    async def put_refresh(self, key: str, record: RefreshRecord) -> None: ...
    async def use_refresh(self, key: str, now: float) -> RefreshRecord | None: ...

    async def facts(self) -> StoreFacts:
        """The server's identity, eviction count and memory policy (Redis; else empty)."""
        ...

    async def read_epoch(self) -> tuple[Epoch | None, StoreFacts]:
        """The revocation marker (None: absent or damaged) and the facts, in one round trip."""
        ...

    async def replace_epoch(self, expected: Epoch | None, new: Epoch) -> Epoch | None:
        """Store `new` if the marker is still `expected` (None: absent); return what is stored.

        Nodes race to replace a lost marker: one wins, the others get the winner's.
        """
        ...

    async def raise_epoch_cutoff(self, epoch: str, cutoff: float) -> Epoch | None:
        """Move that epoch's global cutoff up to `cutoff` (never down); return the marker."""
        ...
