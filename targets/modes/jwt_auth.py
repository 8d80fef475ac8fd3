"""AUTH_MODE=jwt: a signed access token in the Authorization header, no state by default."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from targets.errors import NotAvailable, Unauthorized
from targets.keys import is_hmac
from targets.modes.base import Principal, bearer_token
from targets.responses import json_response
from targets.revocations import PubSubRevocations, Revocations
from targets.settings import Settings
from targets.stores import EpochGuard, RedisStore, Store, StoreUnavailable
from targets.tokens import InvalidToken, TokenCodec


class JwtAuth:
    """Stateless JWT; JWT_REVOCATION=blocklist reads the store per request, pubsub a local copy.

    With revocation on, an EpochGuard watches the store for lost revocation state and
    holds the global cutoff: a token issued before a loss was detected is revoked.
    """

    name = "jwt"
    is_bearer = True

    def __init__(self, settings: Settings, store: Store, codec: TokenCodec) -> None:
        self.settings = settings
        self.store = store
        self.codec = codec
        self.is_revocable = settings.jwt_revocation != "none"
        self.revocations: Revocations = store
        self.guard: EpochGuard | None = None
        if self.is_revocable:
            self.guard = EpochGuard(store, settings.store_timeout)
        self.pubsub: PubSubRevocations | None = None
        if settings.jwt_revocation == "pubsub":
            assert isinstance(store, RedisStore)  # Settings.from_env insists on STORE=redis
            self.pubsub = PubSubRevocations(store, settings.store_namespace, self.guard)
            self.revocations = self.pubsub
        self._max_bytes = settings.max_credential_bytes
        # An HMAC secret is never published: there is then no public key to serve.
        self.jwks: dict[str, Any] | None = None if is_hmac(codec.keys.alg) else codec.keys.jwks()

    async def start(self) -> None:
        if self.guard is not None:
            await self.guard.open()  # before pub/sub loads the list: a loss is known first
        if self.pubsub is not None:
            await self.pubsub.open()

    async def stop(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.close()
        if self.guard is not None:
            await self.guard.close()

    async def health(self) -> dict[str, Any]:
        if self.pubsub is not None and not self.pubsub.is_listening:
            raise StoreUnavailable("revocation channel down")
        if self.guard is None:
            return {"revocation_state": None}
        self.guard.ensure_checked()
        return {"revocation_state": self.guard.describe()}

    def token_body(self, token: str) -> dict[str, Any]:
        """The login/refresh answer of RFC 6749 section 5.1."""
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.codec.ttl}

    async def login(self, request: Request, user: str) -> Response:
        token, _ = self.codec.issue(user)
        return json_response(self.token_body(token))

    async def authenticate(self, request: Request) -> Principal:
        token = bearer_token(request, self._max_bytes)
        try:
            claims = self.codec.verify(token)
        except InvalidToken as exc:
            raise Unauthorized(str(exc)) from None
        guard = self.guard
        if guard is not None:
            guard.ensure_checked()
            state = await self.revocations.revocation_state(claims.jti, claims.sub, time.time())
            if state.is_blocked:
                raise Unauthorized("token revoked")
            # Read after the store answered: a loss found meanwhile counts for this token.
            if guard.is_revoked(claims.iat):
                raise Unauthorized("token issued before the revocation state was lost")
            if state.cutoff is not None and claims.iat <= state.cutoff:
                raise Unauthorized("token issued before the user's logout-everywhere")
        return Principal(claims.sub, session_key=claims.family, jti=claims.jti, expires=claims.exp)

    def check_write(self, request: Request, principal: Principal) -> None:
        return None  # a header credential is never sent by the browser on its own: no CSRF

    async def revoke_token(self, principal: Principal) -> bool:
        """Blocklist the token's jti until its exp, when revocation is on."""
        if not self.is_revocable:
            return False
        assert principal.jti is not None and principal.expires is not None
        expires = principal.expires + self.settings.jwt_leeway
        await self.revocations.block_token(principal.jti, expires)
        return True

    async def cut_off_user(self, user: str) -> bool:
        """Reject every token of user issued until now, when revocation is on."""
        if not self.is_revocable:
            return False
        now = time.time()
        expires = now + self.codec.ttl + self.settings.jwt_leeway
        await self.revocations.set_user_cutoff(user, now, expires)
        return True

    async def logout(self, request: Request, principal: Principal) -> Response:
        return json_response({"revoked": await self.revoke_token(principal)})

    async def refresh(self, request: Request) -> Response:
        raise NotAvailable("refresh exists only in hybrid mode")

    async def list_sessions(self, principal: Principal) -> dict[str, Any]:
        # Stateless tokens leave no trace on the server: only the current one is known.
        return {
            "is_tracked": False,
            "sessions": [{"id": principal.jti, "current": True, "expires": principal.expires}],
        }

    async def logout_everywhere(self, principal: Principal) -> dict[str, Any]:
        return {"revoked": "all" if await self.cut_off_user(principal.user) else 0}
