"""Opaque refresh tokens, stored hashed, rotated at every use, in families (RFC 9700 4.14).

A login starts a family. Each refresh spends the presented token and issues the next in
the same family; a spent token presented again means a copy exists, so the whole family
is revoked, the legitimate holder's newest token included.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from .store import ExpiringMap

IDLE_TIMEOUT_S = 24 * 60 * 60  # a refresh token unused this long expires
FAMILY_TIMEOUT_S = 7 * 24 * 60 * 60  # a login's family ends this long after it
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits


@dataclass
class _Family:
    username: str
    ends_at: float  # monotonic
    is_revoked: bool = False


@dataclass
class _Entry:
    family: _Family  # shared by every token of the login: revoking it reaches them all
    is_spent: bool = False


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RefreshTokens:
    """The refresh tokens this process issued, by hash; spent ones kept to catch replays."""

    def __init__(self) -> None:
        self._entries: ExpiringMap[_Entry] = ExpiringMap()

    def issue(self, username: str) -> str:
        """A new token starting a new family (at login)."""
        return self._issue(_Family(username, time.monotonic() + FAMILY_TIMEOUT_S))

    def rotate(self, token: str) -> tuple[str, str] | None:
        """Spend token: (its user, the next token), or None when it cannot be used."""
        key = _key(token) if TOKEN_PATTERN.fullmatch(token) else None
        entry = self._entries.get(key) if key is not None else None
        if key is None or entry is None or entry.family.is_revoked:
            return None
        if entry.is_spent:
            entry.family.is_revoked = True  # a replay: end the login everywhere
            return None
        entry.is_spent = True
        # Kept until the family ends, so a replay is recognised for as long as it matters.
        self._entries.put(key, entry, entry.family.ends_at - time.monotonic())
        return entry.family.username, self._issue(entry.family)

    def revoke_family(self, token: str, username: str) -> bool:
        """Revoke the family of username's token; False when token is not one of theirs."""
        entry = self._entries.get(_key(token)) if TOKEN_PATTERN.fullmatch(token) else None
        if entry is None or entry.family.username != username:
            return False
        entry.family.is_revoked = True
        return True

    def _issue(self, family: _Family) -> str:
        token = secrets.token_urlsafe(32)
        ttl = min(IDLE_TIMEOUT_S, family.ends_at - time.monotonic())
        self._entries.put(_key(token), _Entry(family), ttl)
        return token
