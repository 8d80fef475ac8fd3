"""AUTH_MODE=none: every request is user0; the floor the other modes are compared to."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from targets.errors import NotAvailable
from targets.modes.base import NothingToStart, Principal
from targets.responses import json_response

FLOOR_USER = "user0"
_PRINCIPAL = Principal(FLOOR_USER)


class NoAuth(NothingToStart):
    """No credential is issued or checked."""

    name = "none"
    is_bearer = True
    jwks: dict[str, Any] | None = None

    async def login(self, request: Request, user: str) -> Response:
        return json_response({"user": user})

    async def authenticate(self, request: Request) -> Principal:
        return _PRINCIPAL

    def check_write(self, request: Request, principal: Principal) -> None:
        return None

    async def logout(self, request: Request, principal: Principal) -> Response:
        return json_response({"revoked": False})

    async def refresh(self, request: Request) -> Response:
        raise NotAvailable("refresh exists only in hybrid mode")

    async def list_sessions(self, principal: Principal) -> dict[str, Any]:
        return {"sessions": [], "is_tracked": False}

    async def logout_everywhere(self, principal: Principal) -> dict[str, Any]:
        return {"revoked": 0}
