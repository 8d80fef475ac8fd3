"""What every auth mode provides, and helpers they share."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from targets.errors import Forbidden, Unauthorized

CSRF_HEADER = "x-csrf-token"
# secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet.
OPAQUE_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who the request is from, and which credential proved it."""

    user: str
    session_key: str | None = None  # session mode: hashed sid; hybrid: refresh family
    csrf: str | None = None
    jti: str | None = None
    expires: float | None = None


def hash_secret(value: str) -> str:
    """What the store keeps instead of a bearer secret (session ID, refresh token)."""
    return hashlib.sha256(value.encode()).hexdigest()


def check_csrf(request: Request, expected: str | None) -> None:
    """Raise Forbidden unless the X-CSRF-Token header equals the session's token."""
    given = request.headers.get(CSRF_HEADER)
    if expected is None or given is None or not hmac.compare_digest(given, expected):
        raise Forbidden("missing or wrong CSRF token")


def bearer_token(request: Request, max_bytes: int) -> str:
    """The token of an 'Authorization: Bearer <token>' header (RFC 6750), or Unauthorized."""
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("no credential", is_missing=True)
    if len(header) > max_bytes + 7:
        raise Unauthorized("credential too large")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("not a bearer token")
    return token


class NothingToStart:
    """The lifecycle hooks of a mode that keeps no background work (no channel, no guard)."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def health(self) -> dict[str, Any]:
        return {}


class AuthMode(Protocol):
    """The auth step of a twin target; everything else is shared."""

    name: str
    is_bearer: bool  # the credential travels in Authorization, so writes need no CSRF
    jwks: dict[str, Any] | None  # the public keys served at /.well-known/jwks.json, if any

    async def start(self) -> None:
        """What the mode needs before serving (the store is open); may refuse to start."""
        ...

    async def stop(self) -> None: ...

    async def health(self) -> dict[str, Any]:
        """The mode's part of /health; StoreUnavailable when it cannot serve."""
        ...

    async def login(self, request: Request, user: str) -> Response: ...
    async def authenticate(self, request: Request) -> Principal: ...
    def check_write(self, request: Request, principal: Principal) -> None: ...
    async def logout(self, request: Request, principal: Principal) -> Response: ...
    async def refresh(self, request: Request) -> Response: ...
    async def list_sessions(self, principal: Principal) -> dict[str, Any]: ...
    async def logout_everywhere(self, principal: Principal) -> dict[str, Any]: ...
