"""Access tokens: issue and verify JWTs the way RFC 8725 asks, with PyJWT."""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from targets.keys import KeySet, SigningKey

ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068; refresh tokens are opaque, so never interchangeable
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]


class InvalidToken(Exception):
    """The credential is not a valid access token (always answered with 401)."""


@dataclass(frozen=True)
class AccessClaims:
    """What the hot path needs from a verified access token."""

    sub: str
    jti: str
    iat: float
    exp: float
    family: str | None


class TokenCodec:
    """Signs and verifies access tokens with one algorithm and one key map."""

    def __init__(
        self,
        keys: KeySet,
        issuer: str,
        audience: str,
        ttl: int,
        leeway: float,
        max_bytes: int,
        cache_size: int = 0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.leeway = leeway
        self.max_bytes = max_bytes
        # VERIFY_CACHE: token -> claims, kept until exp. The signature and claims of a
        # token never change, so a verified one stays verified until it expires; keys
        # only change at restart. Revocation is checked after verify, so it still holds.
        self.cache_size = cache_size
        self._verified: dict[str, AccessClaims] = {}
        self._algorithms = [keys.alg]  # one explicit allow-list: the configured algorithm
        self._issuers = [issuer]  # a list: PyJWT then compares exactly, not by substring
        # The clock claims (exp, nbf, iat) are checked by _check_lifetime, against the
        # caller's clock: the library checks everything else.
        self._options: Any = {
            "require": REQUIRED_CLAIMS, "strict_aud": True,
            "verify_exp": False, "verify_nbf": False, "verify_iat": False,
        }
        self._sign_headers = {"kid": keys.active.kid, "typ": ACCESS_TOKEN_TYP}

    def issue(
        self, sub: str, family: str | None = None, now: float | None = None
    ) -> tuple[str, AccessClaims]:
        """A new signed access token for sub, and its claims."""
        issued = time.time() if now is None else now
        claims = AccessClaims(
            sub=sub,
            jti=secrets.token_urlsafe(16),
            # ms precision so a per-user cutoff is exact; rounded down, so a token is never
            # dated after the moment it was issued (a cutoff then always catches it).
            iat=math.floor(issued * 1000) / 1000,
            exp=int(issued) + self.ttl,
            family=family,
        )
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        }
        if family is not None:
            payload["fid"] = family
        return self._encode(payload), claims

    def _encode(self, payload: dict[str, Any]) -> str:
        """Sign the payload with the active key (the library's part of issuing)."""
        return jwt.encode(
            payload, self.keys.active.signing, algorithm=self.keys.alg, headers=self._sign_headers
        )

    def verify(self, token: str, now: float | None = None) -> AccessClaims:
        """Check size, header, signature and every required claim at now; raise InvalidToken."""
        if now is None:
            now = time.time()
        if len(token) > self.max_bytes:
            raise InvalidToken("token too large")
        if self.cache_size:
            cached = self._verified.get(token)
            if cached is not None:
                if cached.exp > now - self.leeway:
                    return cached
                del self._verified[token]
            claims = self._verify(token, now)
            if len(self._verified) >= self.cache_size:
                del self._verified[next(iter(self._verified))]  # oldest first: bounded size
            self._verified[token] = claims
            return claims
        return self._verify(token, now)

    def _key_for(self, token: str) -> SigningKey:
        """The configured key the token's kid names (the only key with one key).

        A jwk, jku, x5u or x5c header is never read: a token does not choose its own key.
        """
        if self.keys.is_single:
            return self.keys.active
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str) or kid not in self.keys.by_kid:
            raise InvalidToken("unknown kid")
        return self.keys.by_kid[kid]

    def _decode(self, token: str, key: SigningKey) -> tuple[dict[str, Any], dict[str, Any]]:
        """Signature, algorithm and the claims but exp, nbf and iat, by the library."""
        decoded = jwt.decode_complete(
            token,
            key.verifying,
            algorithms=self._algorithms,
            audience=self.audience,
            issuer=self._issuers,
            options=self._options,
        )
        return decoded["header"], decoded["payload"]

    def _check_lifetime(self, payload: dict[str, Any], now: float) -> None:
        """exp, nbf and iat at now, give or take the leeway; one rule for both libraries."""
        exp, iat, nbf = payload["exp"], payload["iat"], payload.get("nbf", now)
        # PyJWT accepts anything int() takes ("123", true); a NumericDate is a JSON number.
        if not (_is_numeric_date(exp) and _is_numeric_date(iat) and _is_numeric_date(nbf)):
            raise InvalidToken("exp, iat and nbf must be numbers")
        if exp <= now - self.leeway:
            raise InvalidToken("token expired")
        if nbf > now + self.leeway:
            raise InvalidToken("token not yet valid (nbf)")
        if iat > now + self.leeway:
            raise InvalidToken("token issued in the future (iat)")

    def _verify(self, token: str, now: float) -> AccessClaims:
        try:
            key = self._key_for(token)
            header, payload = self._decode(token, key)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if header.get("kid") != key.kid:
            raise InvalidToken("kid does not match the verifying key")
        if header.get("typ") != ACCESS_TOKEN_TYP:
            raise InvalidToken("not an access token")
        if "crit" in header:  # we understand no extension, so none may be critical
            raise InvalidToken("unsupported critical header")
        self._check_lifetime(payload, now)
        sub, jti, family = payload["sub"], payload["jti"], payload.get("fid")
        if not isinstance(sub, str) or not isinstance(jti, str):
            raise InvalidToken("sub and jti must be strings")
        if family is not None and not isinstance(family, str):
            raise InvalidToken("fid must be a string")
        return AccessClaims(sub, jti, payload["iat"], payload["exp"], family)


def _is_numeric_date(value: Any) -> bool:
    """A JSON number that is a real time: not a boolean, not NaN or infinite."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
