"""The app's configuration, read once from NOTES_* environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

AUTH_MODES = ("session", "jwt")
MIN_SECRET_BYTES = 32  # HS256: a key at least as long as the hash output (RFC 8725)


class ConfigError(ValueError):
    """An environment variable holds a value the app cannot run with."""


@dataclass(frozen=True)
class Settings:
    """What the environment chose: the auth variant, the store, the users."""

    auth: str
    redis_url: str | None
    namespace: str
    users: int
    jwt_secret: bytes
    is_jwt_secret_generated: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from `env` (os.environ by default); ConfigError names a bad variable."""
        env = os.environ if env is None else env
        auth = env.get("NOTES_AUTH", "session")
        if auth not in AUTH_MODES:
            raise ConfigError(f"NOTES_AUTH must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        users_text = env.get("NOTES_USERS", "1000")
        if not users_text.isdigit() or int(users_text) < 1:
            raise ConfigError(f"NOTES_USERS must be a positive integer, not {users_text!r}")
        secret_text = env.get("NOTES_JWT_SECRET")
        if secret_text is not None and len(secret_text.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"NOTES_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes "
                              "(make one with: python -c 'import secrets; "
                              "print(secrets.token_urlsafe(32))')")
        return cls(
            auth=auth,
            redis_url=env.get("NOTES_REDIS_URL") or None,
            namespace=env.get("NOTES_NAMESPACE", "notes"),
            users=int(users_text),
            jwt_secret=(secret_text.encode() if secret_text is not None
                        else secrets.token_bytes(MIN_SECRET_BYTES)),
            is_jwt_secret_generated=secret_text is None,
        )
