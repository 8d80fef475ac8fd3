"""AUTH_MODE=hybrid: short-lived access JWT plus a rotating opaque refresh token."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from targets.errors import Unauthorized
from targets.modes.base import OPAQUE_TOKEN, Principal, check_csrf, hash_secret
from targets.modes.jwt_auth import JwtAuth
from targets.responses import json_response
from targets.stores import RefreshRecord, SessionRecord

FAMILY_ID_LENGTH = 22  # secrets.token_urlsafe(16)


class HybridAuth(JwtAuth):
    """Access tokens as in jwt mode; refresh tokens rotate, and a replay kills the family.

    A family is stored as a session record (one per login, "a device"), so listing
    and logging out devices work as in session mode. The refresh cookie holds
    '<family>.<secret>'; the store keeps only the secret's hash.
    """

    name = "hybrid"

    @property
    def cookie(self) -> str:
        return "__Secure-rt" if self.settings.is_tls else "rt"

    def _set_refresh_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            self.cookie, value, max_age=self.settings.refresh_ttl, path="/auth",
            httponly=True, samesite="strict", secure=self.settings.is_tls,
        )

    async def _store_new_refresh(self, user: str, family: str, expires: float) -> str:
        secret = secrets.token_urlsafe(32)
        await self.store.put_refresh(hash_secret(secret), RefreshRecord(family, user, expires))
        return secret

    def _pair(self, user: str, family: str, csrf: str, secret: str) -> Response:
        token, _ = self.codec.issue(user, family=family)
        response = json_response({**self.token_body(token), "csrf_token": csrf})
        self._set_refresh_cookie(response, f"{family}.{secret}")
        return response

    async def login(self, request: Request, user: str) -> Response:
        now = time.time()
        family = secrets.token_urlsafe(16)
        expires = now + self.settings.refresh_ttl
        record = SessionRecord(user, secrets.token_urlsafe(32), now, expires, expires)
        await self.store.create_session(family, record)
        secret = await self._store_new_refresh(user, family, expires)
        return self._pair(user, family, record.csrf, secret)

    async def refresh(self, request: Request) -> Response:
        family, _, secret = request.cookies.get(self.cookie, "").partition(".")
        if len(family) != FAMILY_ID_LENGTH or not OPAQUE_TOKEN.fullmatch(secret):
            raise Unauthorized("no valid refresh cookie")
        now = time.time()
        if self.guard is not None:
            self.guard.ensure_checked()
        record = await self.store.get_session(family, now)
        if record is None:  # also when the store lost it: a lost family just logs out
            raise Unauthorized("refresh family revoked or expired")
        # A family the store kept through a loss may have been revoked and come back (a
        # reloaded snapshot): a login from before the loss is not renewed.
        if self.guard is not None and self.guard.is_revoked(record.created):
            raise Unauthorized("refresh family started before the revocation state was lost")
        # The refresh cookie is sent by the browser on its own: require the CSRF token
        # before the refresh token is spent.
        check_csrf(request, record.csrf)
        # Store the successor before spending the token: if the store fails in between,
        # the old token is still unspent and the client's retry is not taken for a replay.
        successor = await self._store_new_refresh(record.user, family, record.absolute_expires)
        used = await self.store.use_refresh(hash_secret(secret), now)
        if used is None or used.family != family:
            raise Unauthorized("unknown or expired refresh token")
        if used.is_used:
            await self.store.delete_session(family)  # RFC 9700 4.14: replay revokes the family
            raise Unauthorized("refresh token replayed: family revoked")
        return self._pair(record.user, family, record.csrf, successor)

    async def logout(self, request: Request, principal: Principal) -> Response:
        family_revoked = False
        if principal.session_key is not None:
            family_revoked = await self.store.delete_session(principal.session_key)
        access_revoked = await self.revoke_token(principal)
        response = json_response({"revoked": access_revoked, "refresh_revoked": family_revoked})
        response.delete_cookie(
            self.cookie, path="/auth", httponly=True, samesite="strict",
            secure=self.settings.is_tls,
        )
        return response

    async def list_sessions(self, principal: Principal) -> dict[str, Any]:
        families = await self.store.list_sessions(principal.user, time.time())
        return {
            "is_tracked": True,
            "sessions": [
                {
                    "id": key,
                    "current": key == principal.session_key,
                    "created": record.created,
                    "expires": record.absolute_expires,
                }
                for key, record in families
            ],
        }

    async def logout_everywhere(self, principal: Principal) -> dict[str, Any]:
        families = await self.store.delete_user_sessions(principal.user)
        access = await self.cut_off_user(principal.user)
        return {"revoked": families, "access_revoked": access}
