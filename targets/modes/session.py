"""AUTH_MODE=session: an opaque 256-bit session ID in a cookie, state in the store."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from targets.errors import NotAvailable, Unauthorized
from targets.modes.base import OPAQUE_TOKEN, NothingToStart, Principal, check_csrf, hash_secret
from targets.responses import json_response
from targets.settings import Settings
from targets.stores import SessionRecord, Store


def session_cookie_name(is_tls: bool) -> str:
    """'__Host-sid' over TLS (Secure, Path=/, no Domain, by the browser's rules), else 'sid'."""
    return "__Host-sid" if is_tls else "sid"


def new_session(user: str, settings: Settings, now: float) -> tuple[str, SessionRecord]:
    """A fresh session ID (256 bits from secrets) and the record to store under its hash."""
    sid = secrets.token_urlsafe(32)
    record = SessionRecord(
        user=user,
        csrf=secrets.token_urlsafe(32),
        created=now,
        idle_expires=now + settings.session_idle_ttl,
        absolute_expires=now + settings.session_absolute_ttl,
    )
    return sid, record


class SessionAuth(NothingToStart):
    """Server-side sessions: one store read per request, revocation is a delete."""

    name = "session"
    is_bearer = False
    jwks: dict[str, Any] | None = None

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.cookie = session_cookie_name(settings.is_tls)
        self._idle = settings.session_idle_ttl
        self._touch_after = settings.session_touch_interval

    def _set_cookie(self, response: Response, sid: str) -> None:
        response.set_cookie(
            self.cookie, sid, path="/", httponly=True, samesite="lax", secure=self.settings.is_tls
        )

    async def login(self, request: Request, user: str) -> Response:
        now = time.time()
        old = request.cookies.get(self.cookie)
        if old is not None and OPAQUE_TOKEN.fullmatch(old):
            await self.store.delete_session(hash_secret(old))
        sid, record = new_session(user, self.settings, now)
        await self.store.create_session(hash_secret(sid), record)
        response = json_response(
            {"user": user, "csrf_token": record.csrf, "expires_in": self._idle}
        )
        self._set_cookie(response, sid)
        return response

    async def authenticate(self, request: Request) -> Principal:
        sid = request.cookies.get(self.cookie)
        if sid is None:
            raise Unauthorized("no session cookie", is_missing=True)
        if not OPAQUE_TOKEN.fullmatch(sid):
            raise Unauthorized("malformed session cookie")
        key = hash_secret(sid)
        now = time.time()
        record = await self.store.get_session(key, now)
        if record is None:
            raise Unauthorized("unknown or expired session")
        # Sliding idle timeout, refreshed at most once per touch interval to spare writes.
        if record.idle_expires - now <= self._idle - self._touch_after:
            await self.store.touch_session(key, record, now + self._idle)
        return Principal(record.user, session_key=key, csrf=record.csrf)

    def check_write(self, request: Request, principal: Principal) -> None:
        check_csrf(request, principal.csrf)

    async def logout(self, request: Request, principal: Principal) -> Response:
        assert principal.session_key is not None
        revoked = await self.store.delete_session(principal.session_key)
        response = json_response({"revoked": revoked})
        response.delete_cookie(
            self.cookie, path="/", httponly=True, samesite="lax", secure=self.settings.is_tls
        )
        return response

    async def refresh(self, request: Request) -> Response:
        raise NotAvailable("refresh exists only in hybrid mode")

    async def list_sessions(self, principal: Principal) -> dict[str, Any]:
        sessions = await self.store.list_sessions(principal.user, time.time())
        return {
            "is_tracked": True,
            "sessions": [
                {
                    "id": key[:16],
                    "current": key == principal.session_key,
                    "created": record.created,
                    "expires": min(record.idle_expires, record.absolute_expires),
                }
                for key, record in sessions
            ],
        }

    async def logout_everywhere(self, principal: Principal) -> dict[str, Any]:
        return {"revoked": await self.store.delete_user_sessions(principal.user)}
