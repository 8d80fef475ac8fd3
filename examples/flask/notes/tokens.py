"""JWT: HS256 access tokens in a Bearer header, and a blocklist of revoked jti for logout."""

from __future__ import annotations

import secrets
import time

import jwt
from flask import Response, jsonify, request

from .auth import INVALID_CREDENTIAL, MISSING_CREDENTIAL, AuthError, Principal
from .store import Store

ALGORITHM = "HS256"  # the one algorithm accepted: never `none`, never a public-key one
ISSUER = "notes-example"
AUDIENCE = "notes-api"
LIFETIME_S = 15 * 60
LEEWAY_S = 5
MAX_TOKEN_BYTES = 2048  # checked before any decoding
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]
# Deliberate, as some frameworks do (FastAPI's HTTPBearer did): no credential at all is
# 403, a bad one 401. A client driving several APIs must accept either as "rejected".
MISSING_STATUS = 403
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class JwtAuth:
    """Tokens signed with `secret`; logout blocklists the jti in `store` until its exp."""

    def __init__(self, secret: bytes, store: Store) -> None:
        self._secret = secret
        self._store = store

    def login(self, username: str) -> Response:
        now = int(time.time())
        claims = {"sub": username, "iat": now, "exp": now + LIFETIME_S,
                  "jti": secrets.token_urlsafe(16), "iss": ISSUER, "aud": AUDIENCE}
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return jsonify(token=token, expires_in=LIFETIME_S)

    def authenticate(self) -> Principal:
        header = request.headers.get("Authorization")
        if header is None:
            raise AuthError(MISSING_STATUS, MISSING_CREDENTIAL, {"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_BYTES:
            raise AuthError(401, INVALID_CREDENTIAL, BEARER_CHALLENGE)
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], audience=AUDIENCE,
                                issuer=[ISSUER], leeway=LEEWAY_S,
                                options={"require": REQUIRED_CLAIMS})
        except jwt.InvalidTokenError:
            raise AuthError(401, INVALID_CREDENTIAL, BEARER_CHALLENGE) from None
        jti, username = claims["jti"], claims["sub"]
        if not isinstance(jti, str) or not isinstance(username, str):
            raise AuthError(401, INVALID_CREDENTIAL, BEARER_CHALLENGE)
        if self._store.get("revoked:" + jti) is not None:
            raise AuthError(401, INVALID_CREDENTIAL, BEARER_CHALLENGE)
        return Principal(username, jti, float(claims["exp"]))

    def check_write(self, principal: Principal) -> None:
        """Nothing to check: a browser never attaches a Bearer header by itself."""

    def logout(self, principal: Principal) -> Response:
        # Kept until the token could no longer pass (exp plus the leeway), never less.
        ttl = max(1, int(principal.expires_at - time.time()) + LEEWAY_S + 1)
        self._store.set("revoked:" + principal.credential_id, "1", ttl)
        return jsonify(logged_out=True)
