"""JWT_LIB=joserfc: the same access-token rules as TokenCodec, with joserfc underneath.

Only the library calls differ: signing, and the signature/algorithm/claim checks of
`_decode`. Size limits, kid selection, typ, crit, exp/nbf/iat against the clock and
revocation stay in TokenCodec, so both libraries enforce exactly the same policy.
"""

from __future__ import annotations

import warnings
from typing import Any

from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from targets.keys import KeySet, SigningKey
from targets.tokens import InvalidToken, TokenCodec


def _jose_key(alg: str, key: Any) -> Any:
    if isinstance(key, bytes):
        return OctKey.import_key(key)
    if alg in ("RS256", "PS256"):
        return RSAKey.import_key(key)
    if alg == "EdDSA":
        return OKPKey.import_key(key)
    return ECKey.import_key(key)


class _ClaimsWithoutClock(jose_jwt.JWTClaimsRegistry):
    """joserfc's claim checks without its clock: TokenCodec checks exp, nbf, iat at its now."""

    def validate_exp(self, value: object) -> None:
        return None

    def validate_nbf(self, value: object) -> None:
        return None

    def validate_iat(self, value: object) -> None:
        return None


class JoserfcCodec(TokenCodec):
    """TokenCodec whose signing and verification are done by joserfc."""

    def __init__(self, keys: KeySet, issuer: str, audience: str, ttl: int, leeway: float,
                 max_bytes: int, cache_size: int = 0) -> None:
        super().__init__(keys, issuer, audience, ttl, leeway, max_bytes, cache_size)
        if keys.alg == "EdDSA":
            # RFC 9864 renames EdDSA (as Ed25519); the targets keep the name PyJWT and the
            # article's readers use. joserfc warns on every use: once is said here.
            warnings.filterwarnings("ignore", message="EdDSA is deprecated",
                                    category=SecurityWarning)
        # Key objects built once, at start (never parsed per request).
        self._signing = _jose_key(keys.alg, keys.active.signing)
        self._verifying = {kid: _jose_key(keys.alg, k.verifying) for kid, k in keys.by_kid.items()}
        self._registry = _ClaimsWithoutClock(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            sub={"essential": True}, jti={"essential": True},
            exp={"essential": True}, iat={"essential": True},
        )

    def _encode(self, payload: dict[str, Any]) -> str:
        header = {"alg": self.keys.alg, **self._sign_headers}
        return jose_jwt.encode(header, payload, self._signing, algorithms=self._algorithms)

    def _decode(self, token: str, key: SigningKey) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            decoded = jose_jwt.decode(token, self._verifying[key.kid], algorithms=self._algorithms)
            claims = dict(decoded.claims)
            self._registry.validate(claims)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
        # What PyJWT checks and joserfc's registry does not, so both libraries agree:
        # aud is exactly our audience (not a list holding it).
        if claims.get("aud") != self.audience:
            raise InvalidToken("aud must be exactly the configured audience")
        return dict(decoded.header), claims
