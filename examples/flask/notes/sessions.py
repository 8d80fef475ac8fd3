"""Server-side sessions: an opaque id in a cookie, the record in the store, CSRF on writes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time

from flask import Response, jsonify, request

from .auth import INVALID_CREDENTIAL, MISSING_CREDENTIAL, MISSING_CSRF, AuthError, Principal
from .store import Store

COOKIE = "notes_sid"
IDLE_TIMEOUT_S = 30 * 60  # the record's TTL, renewed by every authenticated request
ABSOLUTE_TIMEOUT_S = 8 * 60 * 60  # from login, whatever the activity
SID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits


def _key(sid: str) -> str:
    # The store keeps a hash of the id: reading the store yields no usable cookie.
    return "session:" + hashlib.sha256(sid.encode()).hexdigest()


class SessionAuth:
    """Sessions in `store`; the cookie is HttpOnly, SameSite=Lax, Path=/ (Secure over TLS)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def login(self, username: str) -> Response:
        sid = secrets.token_urlsafe(32)  # a new id at every login: no fixation
        csrf = secrets.token_urlsafe(32)
        record = {"user": username, "csrf": csrf, "created": time.time()}
        self._store.set(_key(sid), json.dumps(record), IDLE_TIMEOUT_S)
        response = jsonify(csrf=csrf)
        response.set_cookie(COOKIE, sid, max_age=ABSOLUTE_TIMEOUT_S, path="/",
                            secure=request.is_secure, httponly=True, samesite="Lax")
        return response

    def authenticate(self) -> Principal:
        sid = request.cookies.get(COOKIE)
        if not sid:
            raise AuthError(401, MISSING_CREDENTIAL)
        if not SID_PATTERN.fullmatch(sid):
            raise AuthError(401, INVALID_CREDENTIAL)
        key = _key(sid)
        raw = self._store.get_and_touch(key, IDLE_TIMEOUT_S)
        if raw is None:
            raise AuthError(401, INVALID_CREDENTIAL)
        record = json.loads(raw)
        expires_at = float(record["created"]) + ABSOLUTE_TIMEOUT_S
        if expires_at <= time.time():
            self._store.delete(key)
            raise AuthError(401, INVALID_CREDENTIAL)
        return Principal(record["user"], key, expires_at, csrf=record["csrf"])

    def check_write(self, principal: Principal) -> None:
        given = request.headers.get("X-CSRF-Token", "")
        if principal.csrf is None or not hmac.compare_digest(given.encode(),
                                                             principal.csrf.encode()):
            raise AuthError(403, MISSING_CSRF)

    def logout(self, principal: Principal) -> Response:
        self._store.delete(principal.credential_id)
        response = jsonify(logged_out=True)
        response.delete_cookie(COOKIE, path="/", secure=request.is_secure, httponly=True,
                               samesite="Lax")
        return response
