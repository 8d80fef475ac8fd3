"""Server-side sessions: an opaque id in a cookie, the record in memory, CSRF on writes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

from .auth import INVALID_CREDENTIAL, MISSING_CREDENTIAL, NO_STORE, AuthError, Principal
from .store import ExpiringMap

COOKIE = "bm_session"
CSRF_HEADER = "X-CSRF-Token"
IDLE_TIMEOUT_S = 30 * 60  # renewed by every authenticated request
ABSOLUTE_TIMEOUT_S = 8 * 60 * 60  # from login, whatever the activity
SID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MISSING_CSRF = f"missing or wrong {CSRF_HEADER}"
# There is no registered scheme for cookies; this is the one draft-broyer-http-cookie-auth
# describes, and it tells a client where to log in.
CHALLENGE = {"WWW-Authenticate": f'Cookie realm="bookmarks", form-action="/auth/login", '
                                 f'cookie-name="{COOKIE}"'}


@dataclass(frozen=True)
class _Session:
    username: str
    csrf: str
    ends_at: float  # monotonic: the absolute timeout


def _key(sid: str) -> str:
    # The store keeps a hash of the id: a dump of the store yields no usable cookie.
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionAuth:
    """Sessions in memory; cookie `bm_session` is HttpOnly, SameSite=Lax, Path=/ (Secure on TLS)."""

    def __init__(self) -> None:
        self._sessions: ExpiringMap[_Session] = ExpiringMap()

    def routes(self) -> list[web.RouteDef]:
        return []

    def login(self, request: web.Request, username: str) -> web.Response:
        old = request.cookies.get(COOKIE)
        if old is not None and SID_PATTERN.fullmatch(old):
            self._sessions.pop(_key(old))  # the browser's previous session ends here
        sid = secrets.token_urlsafe(32)  # a new id at every login: no fixation
        csrf = secrets.token_urlsafe(32)
        session = _Session(username, csrf, time.monotonic() + ABSOLUTE_TIMEOUT_S)
        self._sessions.put(_key(sid), session, IDLE_TIMEOUT_S)
        response = web.json_response({"csrf": csrf}, headers=NO_STORE)
        response.set_cookie(COOKIE, sid, max_age=ABSOLUTE_TIMEOUT_S, path="/",
                            secure=request.secure, httponly=True, samesite="Lax")
        return response

    def authenticate(self, request: web.Request) -> Principal:
        sid = request.cookies.get(COOKIE)
        if not sid:
            raise AuthError(401, MISSING_CREDENTIAL, CHALLENGE)
        if not SID_PATTERN.fullmatch(sid):
            raise AuthError(401, INVALID_CREDENTIAL, CHALLENGE)
        key = _key(sid)
        session = self._sessions.get(key)
        if session is None:
            raise AuthError(401, INVALID_CREDENTIAL, CHALLENGE)
        if session.ends_at <= time.monotonic():
            self._sessions.pop(key)
            raise AuthError(401, INVALID_CREDENTIAL, CHALLENGE)
        if request.method in UNSAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                       session.csrf.encode()):
                raise AuthError(403, MISSING_CSRF)
        self._sessions.touch(key, IDLE_TIMEOUT_S)
        return Principal(session.username, key)

    async def logout(self, request: web.Request, principal: Principal) -> web.Response:
        self._sessions.pop(principal.credential_id)
        response = web.json_response({"logged_out": True}, headers=NO_STORE)
        response.del_cookie(COOKIE, path="/", secure=request.secure, httponly=True,
                            samesite="Lax")
        return response
