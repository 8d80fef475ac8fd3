"""The seeded users user0..user<N-1> and their passwords, checked with scrypt."""

from __future__ import annotations

import hashlib
import hmac
import re

USER_PATTERN = re.compile(r"user(0|[1-9][0-9]{0,8})")
MAX_PASSWORD_BYTES = 1024  # bounds the KDF's cost per attempt
# scrypt with N=2^14, r=8, p=1: 16 MiB and some tens of ms per hash on one core. Below
# OWASP's recommendation (N=2^17) on purpose, so logins do not dominate a benchmark.
KDF_N, KDF_R, KDF_P = 2**14, 8, 1
KDF_MAXMEM = 2 * 128 * KDF_N * KDF_R  # twice what these parameters need
# Hashes one password no user has, so an unknown user costs what a known one does.
UNKNOWN_USER = "unknown-user"


def seed_password(username: str) -> str:
    """The documented password of a seeded user: 'pass-' + username."""
    return f"pass-{username}"


class UserDirectory:
    """Users user0..user<count-1>; each stored hash is derived the first time it is needed.

    Deriving on demand keeps startup instant with any number of users. A user's first login
    pays the KDF twice (once for the stored hash), every later one once.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._hashes: dict[str, bytes] = {}

    def exists(self, username: str) -> bool:
        """True for a seeded username."""
        match = USER_PATTERN.fullmatch(username)
        return match is not None and int(match.group(1)) < self.count

    def verify(self, username: str, password: str) -> bool:
        """True when password is the user's. Blocking (the KDF): run it off the event loop."""
        # surrogatepass: a lone surrogate from JSON is a wrong password, not an exception.
        given = password.encode("utf-8", "surrogatepass")
        if len(given) > MAX_PASSWORD_BYTES:
            return False
        known = self.exists(username)
        name = username if known else UNKNOWN_USER
        is_match = hmac.compare_digest(_kdf(given, name), self._stored_hash(name))
        return known and is_match

    def _stored_hash(self, username: str) -> bytes:
        stored = self._hashes.get(username)
        if stored is None:  # two first logins at once both derive it: harmless
            stored = self._hashes[username] = _kdf(seed_password(username).encode(), username)
        return stored


def _salt(username: str) -> bytes:
    # Derived from the name so every start derives the same stored hashes; unique per user,
    # which is what a salt is for (a real service stores a random one beside the hash).
    return hashlib.sha256(b"bookmarks-example-salt:" + username.encode()).digest()[:16]


def _kdf(password: bytes, username: str) -> bytes:
    return hashlib.scrypt(password, salt=_salt(username), n=KDF_N, r=KDF_R, p=KDF_P,
                          maxmem=KDF_MAXMEM, dklen=32)
