"""The seeded users alice0..alice<N-1> and their passwords, checked with scrypt."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

USER_PATTERN = re.compile(r"alice(0|[1-9][0-9]{0,8})")
MAX_PASSWORD_BYTES = 1024  # bounds the KDF's cost per attempt
# scrypt with N=2^12, r=8, p=1: 4 MiB and ~12 ms per hash on one core. Below OWASP's
# recommendation (N=2^17) on purpose, so logins do not dominate a benchmark; the first login
# of a user pays it twice (its stored hash is derived then), so a login stays under ~50 ms.
KDF_N, KDF_R, KDF_P = 2**12, 8, 1


def seed_password(username: str) -> str:
    """The documented password of a seeded user: 'secret-' + username."""
    return f"secret-{username}"


class UserDirectory:
    """Users alice0..alice<count-1>; each stored hash is derived the first time it is needed."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._salt_key = secrets.token_bytes(32)
        self._dummy_salt = secrets.token_bytes(16)
        self._hashes: dict[str, bytes] = {}

    def exists(self, username: str) -> bool:
        """True for a seeded username."""
        match = USER_PATTERN.fullmatch(username)
        return match is not None and int(match.group(1)) < self.count

    def verify(self, username: str, password: str) -> bool:
        """True when password is the user's; unknown users cost the same KDF (no user oracle)."""
        given = password.encode()
        if len(given) > MAX_PASSWORD_BYTES:
            return False
        if not self.exists(username):
            _kdf(given, self._dummy_salt)
            return False
        salt = hmac.digest(self._salt_key, username.encode(), "sha256")[:16]
        stored = self._hashes.get(username)
        if stored is None:
            stored = self._hashes[username] = _kdf(seed_password(username).encode(), salt)
        return hmac.compare_digest(_kdf(given, salt), stored)

    @staticmethod
    def profile(username: str) -> dict[str, str]:
        """The small profile /me answers with."""
        number = username.removeprefix("alice")
        return {"display_name": f"Alice #{number}", "email": f"{username}@example.com",
                "plan": "free"}


def _kdf(password: bytes, salt: bytes) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=KDF_N, r=KDF_R, p=KDF_P,
                          maxmem=256 * KDF_N * KDF_R + 1024 * 1024, dklen=32)
