"""The one async protocol every store implements, and the records it keeps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class StoreUnavailable(Exception):
    """The store did not answer in time or at all: the target fails closed with 503."""


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
