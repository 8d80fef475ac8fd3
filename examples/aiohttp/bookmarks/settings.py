"""The app's configuration, read once from BOOKMARKS_* environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

AUTH_MODES = ("session", "jwt")
MIN_SECRET_BYTES = 32  # HS256: a key at least as long as the hash output (RFC 8725)
DEFAULT_USERS = 1000
DEFAULT_ACCESS_TTL_S = 300


class ConfigError(ValueError):
    """An environment variable holds a value the app cannot run with."""


@dataclass(frozen=True)
class Settings:
    """What the environment chose: the auth variant, the users, the JWT secret and lifetime."""

    auth: str
    users: int
    jwt_secret: bytes
    is_jwt_secret_generated: bool
    access_ttl_s: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (os.environ by default); ConfigError names a bad variable."""
        env = os.environ if env is None else env
        auth = env.get("BOOKMARKS_AUTH", "session")
        if auth not in AUTH_MODES:
            raise ConfigError(f"BOOKMARKS_AUTH must be one of {', '.join(AUTH_MODES)}, "
                              f"not {auth!r}")
        secret_text = env.get("BOOKMARKS_JWT_SECRET")
        if secret_text is not None and len(secret_text.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"BOOKMARKS_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes "
                              "(make one with: python -c 'import secrets; "
                              "print(secrets.token_urlsafe(32))')")
        return cls(
            auth=auth,
            users=_positive_int(env, "BOOKMARKS_USERS", DEFAULT_USERS),
            jwt_secret=(secret_text.encode() if secret_text is not None
                        else secrets.token_bytes(MIN_SECRET_BYTES)),
            is_jwt_secret_generated=secret_text is None,
            access_ttl_s=_positive_int(env, "BOOKMARKS_ACCESS_TTL", DEFAULT_ACCESS_TTL_S),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, str(default))
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a positive integer, not {text!r}")
    return int(text)
