"""What both auth variants share: who is asking, and how a refusal is answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

INVALID_CREDENTIAL = "invalid or expired credential"
MISSING_CREDENTIAL = "not authenticated"
NO_STORE = {"Cache-Control": "no-store"}  # on every answer that carries a credential


class AuthError(Exception):
    """A refused request: its status, a generic message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user, and the id of the credential it presented."""

    username: str
    credential_id: str  # the session's key in the store, or the access token's jti


class Auth(Protocol):
    """One auth variant: issue a credential, check it on each request, end it at logout."""

    def routes(self) -> list[web.RouteDef]:
        """The variant's own endpoints (the JWT refresh), beside the common ones."""

    def login(self, request: web.Request, username: str) -> web.Response:
        """The answer to a successful login, carrying a new credential."""

    def authenticate(self, request: web.Request) -> Principal:
        """The caller of request (its writes checked for CSRF where needed), or AuthError."""

    async def logout(self, request: web.Request, principal: Principal) -> web.Response:
        """End the caller's login; the answer to the logout."""
