"""JWT: short-lived HS256 access tokens (Bearer), refresh tokens rotated in families.

Logout revokes the refresh family only. The access token is not blocklisted: it keeps
working until its exp, at most BOOKMARKS_ACCESS_TTL seconds. That is the usual trade of
short-lived JWTs (no lookup per request), and what a revocation probe should report.
"""

from __future__ import annotations

import secrets
import time

import jwt
from aiohttp import web

from .auth import INVALID_CREDENTIAL, MISSING_CREDENTIAL, NO_STORE, AuthError, Principal
from .bodies import read_json_object, string_field
from .refresh import RefreshTokens

ALGORITHM = "HS256"  # the one algorithm accepted: never `none`, never a public-key one
ISSUER = "bookmarks-example"
AUDIENCE = "bookmarks-api"
ACCESS_TYPE = "at+jwt"  # RFC 9068's typ; refresh tokens are opaque, never JWTs
LEEWAY_S = 5
MAX_TOKEN_CHARS = 2048  # checked before any decoding
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bookmarks"'}
INVALID_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="bookmarks", error="invalid_token"'}
INVALID_REFRESH = "invalid, expired or revoked refresh token"
NO_REFRESH_TOKEN = 'send JSON {"refresh_token": ...}'


class JwtAuth:
    """Access tokens signed with `secret`, valid `access_ttl_s`; refresh tokens in memory."""

    def __init__(self, secret: bytes, access_ttl_s: int) -> None:
        self._secret = secret
        self._access_ttl_s = access_ttl_s
        self._refresh_tokens = RefreshTokens()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/auth/refresh", self.refresh)]

    def login(self, request: web.Request, username: str) -> web.Response:
        return self._token_answer(username, self._refresh_tokens.issue(username))

    def authenticate(self, request: web.Request) -> Principal:
        # No CSRF check: a browser never attaches a Bearer header by itself.
        header = request.headers.get("Authorization")
        if header is None:
            raise AuthError(401, MISSING_CREDENTIAL, CHALLENGE)
        scheme, _, token = header.partition(" ")
        # A JWT is ASCII (base64url and dots); other bytes would fail PyJWT's own encoding.
        if (scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS
                or not token.isascii()):
            raise AuthError(401, INVALID_CREDENTIAL, INVALID_CHALLENGE)
        try:
            decoded = jwt.decode_complete(token, self._secret, algorithms=[ALGORITHM],
                                          audience=AUDIENCE, issuer=[ISSUER], leeway=LEEWAY_S,
                                          options={"require": REQUIRED_CLAIMS})
        except jwt.InvalidTokenError:
            raise AuthError(401, INVALID_CREDENTIAL, INVALID_CHALLENGE) from None
        claims = decoded["payload"]
        username, jti = claims["sub"], claims["jti"]
        if (decoded["header"].get("typ") != ACCESS_TYPE or not isinstance(username, str)
                or not isinstance(jti, str)):
            raise AuthError(401, INVALID_CREDENTIAL, INVALID_CHALLENGE)
        return Principal(username, jti)

    async def logout(self, request: web.Request, principal: Principal) -> web.Response:
        refresh_token = string_field(await read_json_object(request), "refresh_token")
        if refresh_token is None:
            raise AuthError(400, NO_REFRESH_TOKEN)
        # An unknown or spent token is fine: logging out twice is not an error.
        self._refresh_tokens.revoke_family(refresh_token, principal.username)
        return web.json_response({"logged_out": True}, headers=NO_STORE)

    async def refresh(self, request: web.Request) -> web.Response:
        """POST /auth/refresh: spend a refresh token for a new access and refresh token."""
        refresh_token = string_field(await read_json_object(request), "refresh_token")
        if refresh_token is None:
            raise AuthError(400, NO_REFRESH_TOKEN)
        rotated = self._refresh_tokens.rotate(refresh_token)
        if rotated is None:
            raise AuthError(401, INVALID_REFRESH, INVALID_CHALLENGE)
        return self._token_answer(*rotated)

    def _token_answer(self, username: str, refresh_token: str) -> web.Response:
        now = int(time.time())
        claims = {"sub": username, "iat": now, "exp": now + self._access_ttl_s,
                  "jti": secrets.token_urlsafe(16), "iss": ISSUER, "aud": AUDIENCE}
        access_token = jwt.encode(claims, self._secret, algorithm=ALGORITHM,
                                  headers={"typ": ACCESS_TYPE})
        return web.json_response({"access_token": access_token, "token_type": "Bearer",
                                  "expires_in": self._access_ttl_s,
                                  "refresh_token": refresh_token}, headers=NO_STORE)
