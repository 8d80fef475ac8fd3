"""Seeded users and their passwords, checked with scrypt off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets

USER_PATTERN = re.compile(r"user(0|[1-9][0-9]{0,8})")
MAX_PASSWORD_BYTES = 1024  # bounds the KDF's cost per login attempt


def seed_password(username: str) -> str:
    """The documented password of a seeded user: 'pw-' + username (e.g. pw-user7)."""
    return f"pw-{username}"


class UserDirectory:
    """Users user0..user<N-1>; stored scrypt hashes with per-user salts.

    The stored hash of a user is derived from its seed password the first time
    that user is needed and kept, so a million seeded users cost nothing until
    they log in (the first login of a user pays the KDF twice).
    """

    def __init__(self, count: int, kdf_n: int, kdf_p: int, kdf_r: int = 8) -> None:
        self.count = count
        self._n, self._r, self._p = kdf_n, kdf_r, kdf_p
        self._salt_key = secrets.token_bytes(32)
        self._hashes: dict[str, bytes] = {}
        self._dummy_salt = secrets.token_bytes(16)

    def exists(self, username: str) -> bool:
        """True for a seeded username."""
        match = USER_PATTERN.fullmatch(username)
        return match is not None and int(match.group(1)) < self.count

    def _kdf(self, password: bytes, salt: bytes) -> bytes:
        return hashlib.scrypt(
            password, salt=salt, n=self._n, r=self._r, p=self._p,
            maxmem=256 * self._n * self._r + 1024 * 1024, dklen=32,
        )

    def _salt(self, username: str) -> bytes:
        return hmac.digest(self._salt_key, username.encode(), "sha256")[:16]

    def _check(self, username: str, password: str) -> bool:
        given = password.encode()
        if not self.exists(username):
            self._kdf(given, self._dummy_salt)  # same cost as a real check: no user oracle
            return False
        salt = self._salt(username)
        stored = self._hashes.get(username)
        if stored is None:
            stored = self._kdf(seed_password(username).encode(), salt)
            self._hashes[username] = stored
        return hmac.compare_digest(self._kdf(given, salt), stored)

    async def verify(self, username: str, password: str) -> bool:
        """Check a login in a worker thread (scrypt releases the GIL)."""
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            return False
        return await asyncio.to_thread(self._check, username, password)
