"""What both auth variants share: who is asking, and how a refusal is answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import Response

INVALID_CREDENTIAL = "invalid or expired credential"
MISSING_CREDENTIAL = "not authenticated"
MISSING_CSRF = "missing or wrong X-CSRF-Token"


class AuthError(Exception):
    """A refused request: its status, a generic message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user, its credential's id, and the CSRF token if any."""

    username: str
    credential_id: str  # the session key or the token's jti
    expires_at: float  # epoch seconds
    csrf: str | None = None


class Auth(Protocol):
    """One auth variant: issue a credential, check it, require CSRF on writes, revoke it."""

    def login(self, username: str) -> Response:
        """The answer to a successful login, carrying the new credential."""

    def authenticate(self) -> Principal:
        """The caller of the current request, or AuthError."""

    def check_write(self, principal: Principal) -> None:
        """Raise AuthError(403) when a write lacks what the variant needs (CSRF)."""

    def logout(self, principal: Principal) -> Response:
        """Revoke the caller's credential; the answer to the logout."""
