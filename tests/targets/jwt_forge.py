"""Build JWTs by hand, byte by byte, so a test can give a token exactly one defect.

Not a test module: shared by test_tokens.py (unit) and test_app_bad_input.py (HTTP).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm, get_default_algorithms

from targets.keys import PrivateKey, PublicKey, generate_key
from targets.tokens import ACCESS_TOKEN_TYP

ISSUER = "authbench"
AUDIENCE = "authbench-api"
TYP = ACCESS_TOKEN_TYP


class _Drop:
    """Marker: leave this header parameter or claim out of the token."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """The inverse of b64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def sign(alg: str, key: bytes | PrivateKey, signing_input: bytes) -> bytes:
    """A signature made with PyJWT's own algorithm objects (no key-length warnings)."""
    if alg.startswith("HS"):
        # hmac directly, so any bytes can be the secret (even a PEM public key).
        assert isinstance(key, bytes)
        return hmac.digest(key, signing_input, "sha" + alg[2:])
    algorithm = get_default_algorithms()[alg]
    return algorithm.sign(signing_input, algorithm.prepare_key(key))


def assemble(
    header: dict[str, Any] | bytes,
    payload: dict[str, Any] | bytes,
    alg: str | None = None,
    key: bytes | PrivateKey | None = None,
) -> str:
    """header.payload.signature; header/payload are JSON-encoded unless given as bytes.

    The signature is made with (alg, key) over the first two segments, or empty.
    """
    head = b64url(header if isinstance(header, bytes) else _json(header))
    body = b64url(payload if isinstance(payload, bytes) else _json(payload))
    signing_input = f"{head}.{body}"
    signature = b"" if alg is None or key is None else sign(alg, key, signing_input.encode())
    return f"{signing_input}.{b64url(signature)}"


def _apply(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in changes.items():
        if value is DROP:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


@dataclass(frozen=True)
class Forger:
    """Makes tokens the way the server would, with the server's own key, then spoils one thing."""

    alg: str
    kid: str
    key: bytes | PrivateKey
    issuer: str = ISSUER
    audience: str = AUDIENCE
    sub: str = "user3"

    def header(self, **changes: Any) -> dict[str, Any]:
        return _apply({"alg": self.alg, "typ": TYP, "kid": self.kid}, changes)

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = time.time()
        base = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.sub,
            # In ms, rounded down, as the server issues it: a whole second rounded down
            # may predate a memory store's start, which revokes every earlier token.
            "iat": math.floor(now * 1000) / 1000,
            "exp": int(now) + 600,
            "jti": secrets.token_urlsafe(16),
        }
        return _apply(base, changes)

    def token(self, header: dict[str, Any] | None = None, **claim_changes: Any) -> str:
        """A correctly signed token: header changes as a dict, claim changes as keywords."""
        return assemble(
            self.header(**(header or {})), self.claims(**claim_changes), self.alg, self.key
        )


def public_pem(public: PublicKey, fmt: str = "spki") -> bytes:
    """The PEM an attacker can rebuild from the JWKS (SubjectPublicKeyInfo or PKCS#1)."""
    form = (
        serialization.PublicFormat.PKCS1
        if fmt == "pkcs1"
        else serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public.public_bytes(serialization.Encoding.PEM, form)


def public_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    """The public key object of one JWK as published at /.well-known/jwks.json."""
    kty = jwk["kty"]
    if kty == "RSA":
        key: Any = RSAAlgorithm.from_jwk(jwk)
    elif kty == "EC":
        key = ECAlgorithm.from_jwk(jwk)
    else:
        key = OKPAlgorithm.from_jwk(jwk)
    assert isinstance(
        key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
    ), type(key)
    return key


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The JWK of key's public half (what an attacker embeds in a `jwk` header)."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return jwk


def flip_bit(token: str, segment: int, byte_index: int = 0) -> str:
    """token with one bit of one decoded segment flipped, re-encoded canonically."""
    parts = token.split(".")
    raw = bytearray(unb64url(parts[segment]))
    raw[byte_index] ^= 0x01
    parts[segment] = b64url(bytes(raw))
    return ".".join(parts)


def with_payload(token: str, **changes: Any) -> str:
    """token with its payload edited but the old signature kept."""
    head, body, signature = token.split(".")
    payload = _apply(json.loads(unb64url(body)), changes)
    return f"{head}.{b64url(_json(payload))}.{signature}"


def hmac_digest_size(alg: str) -> int:
    """Output length of the hash behind HS256/384/512."""
    return hashlib.new("sha" + alg[2:]).digest_size


# --- a catalogue of bad tokens, one defect each -----------------------------------------

MAX_BYTES = 4096  # the targets' default MAX_CREDENTIAL_BYTES


@functools.cache
def attacker_key(alg: str) -> bytes | PrivateKey:
    """A key of the right kind for alg that the server has never seen."""
    return generate_key(alg)


Case = Callable[[Forger], str]


def _now() -> int:
    return int(time.time())


def _alg_none(spelling: str) -> Case:
    return lambda f: assemble(f.header(alg=spelling), f.claims())


def _signed_raw(header: bytes | None = None, payload: bytes | None = None) -> Case:
    def build(f: Forger) -> str:
        return assemble(
            header if header is not None else f.header(),
            payload if payload is not None else f.claims(),
            f.alg,
            f.key,
        )

    return build


def _other_key(extra_header: dict[str, Any], embed_jwk: bool = False) -> Case:
    """Signed with the attacker's key of the same algorithm (and the server's kid)."""

    def build(f: Forger) -> str:
        key = attacker_key(f.alg)
        header = {"kid": f.kid, "typ": ACCESS_TOKEN_TYP, **extra_header}
        if embed_jwk:  # "verify me with this key": must be ignored
            if isinstance(key, bytes):
                header["jwk"] = {"kty": "oct", "k": b64url(key)}
            else:
                header["jwk"] = public_jwk(key)
        token: str = jwt.encode(f.claims(), key, algorithm=f.alg, headers=header)
        return token

    return build


def _truncated(chars: int) -> Case:
    return lambda f: f.token()[:-chars]


def _signature_of_another_token(f: Forger) -> str:
    head, body, _ = f.token().split(".")
    return f"{head}.{body}.{f.token(sub='user0').split('.')[2]}"


def _header_edited(f: Forger) -> str:
    _, body, signature = f.token().split(".")
    return f"{b64url(json.dumps(f.header(cty='x')).encode())}.{body}.{signature}"


def _none_header_old_signature(f: Forger) -> str:
    _, body, signature = f.token().split(".")
    return f"{b64url(json.dumps(f.header(alg='none')).encode())}.{body}.{signature}"


BAD_TOKENS: dict[str, Case] = {
    # alg none, in any case, with or without a signature
    "alg-none": _alg_none("none"),
    "alg-None": _alg_none("None"),
    "alg-NONE": _alg_none("NONE"),
    "alg-nOnE": _alg_none("nOnE"),
    "alg-none-old-signature": _none_header_old_signature,
    "alg-missing": lambda f: f.token(header={"alg": DROP}),
    "alg-empty": lambda f: f.token(header={"alg": ""}),
    "alg-lowercase": lambda f: assemble(f.header(alg=f.alg.lower()), f.claims(), f.alg, f.key),
    # signature
    "payload-edited-sub": lambda f: with_payload(f.token(), sub="user0"),
    "payload-edited-exp": lambda f: with_payload(f.token(exp=_now() - 60), exp=_now() + 3600),
    "payload-edited-aud": lambda f: with_payload(f.token(aud="other"), aud=AUDIENCE),
    "signature-truncated-1": _truncated(1),
    "signature-truncated-4": _truncated(4),
    "signature-empty": lambda f: f.token().rsplit(".", 1)[0] + ".",
    "signature-bitflip-first": lambda f: flip_bit(f.token(), 2, 0),
    "signature-bitflip-last": lambda f: flip_bit(f.token(), 2, -1),
    "signature-of-another-token": _signature_of_another_token,
    "signed-by-another-key": _other_key({}),
    "header-edited": lambda f: _header_edited(f),
    # shape
    "segments-1": lambda f: f.token().split(".")[0],
    "segments-2": lambda f: f.token().rsplit(".", 1)[0],
    "segments-4": lambda f: f.token() + "." + f.token().split(".")[2],
    "segments-4-empty": lambda f: f.token() + ".",
    "empty": lambda f: "",
    "dots-only": lambda f: "..",
    "not-base64": lambda f: "!!!." + f.token().split(".", 1)[1],
    "opaque-refresh-token": lambda f: secrets.token_urlsafe(32),
    "whitespace-inside": lambda f: f.token().replace(".", ". ", 1),
    "header-not-json": _signed_raw(header=b"not json"),
    "header-json-array": _signed_raw(header=b'["alg"]'),
    "header-not-utf8": _signed_raw(header=b'{"alg":"\xff"}'),
    "header-nested-json": _signed_raw(header=b"[" * 1400 + b"]" * 1400),
    "payload-not-json": _signed_raw(payload=b"not json"),
    "payload-json-array": _signed_raw(payload=b"[1,2,3]"),
    "payload-json-string": _signed_raw(payload=b'"user3"'),
    "payload-not-utf8": _signed_raw(payload=b'{"sub":"\xff"}'),
    # time
    "expired": lambda f: f.token(exp=_now() - 60),
    "expired-beyond-leeway": lambda f: f.token(exp=_now() - 3),
    "nbf-future": lambda f: f.token(nbf=_now() + 60),
    "iat-future": lambda f: f.token(iat=_now() + 60),
    "iat-beyond-leeway": lambda f: f.token(iat=_now() + 5),
    "exp-not-a-number": lambda f: f.token(exp="tomorrow"),
    "iat-not-a-number": lambda f: f.token(iat="now"),
    "nbf-not-a-number": lambda f: f.token(nbf="soon"),
    "exp-numeric-string": lambda f: f.token(exp=str(_now() + 600)),
    "iat-numeric-string": lambda f: f.token(iat=str(_now())),
    "iat-boolean": lambda f: f.token(iat=True),
    "exp-infinite": lambda f: f.token(exp=1e400),
    # audience and issuer
    "aud-wrong": lambda f: f.token(aud="other-api"),
    "aud-missing": lambda f: f.token(aud=DROP),
    "aud-empty": lambda f: f.token(aud=""),
    "aud-superstring": lambda f: f.token(aud=AUDIENCE + "-admin"),
    "aud-substring": lambda f: f.token(aud=AUDIENCE[:-1]),
    "aud-list-of-other": lambda f: f.token(aud=["other-api"]),
    "iss-wrong": lambda f: f.token(iss="https://evil.example"),
    "iss-missing": lambda f: f.token(iss=DROP),
    "iss-empty": lambda f: f.token(iss=""),
    "iss-superstring": lambda f: f.token(iss=ISSUER + "x"),
    "iss-substring": lambda f: f.token(iss=ISSUER[:-1]),
    "iss-prefix-of-real": lambda f: f.token(iss="auth"),
    "iss-list": lambda f: f.token(iss=[ISSUER]),
    # required claims
    "exp-missing": lambda f: f.token(exp=DROP),
    "exp-null": lambda f: f.token(exp=None),
    "sub-missing": lambda f: f.token(sub=DROP),
    "jti-missing": lambda f: f.token(jti=DROP),
    "iat-missing": lambda f: f.token(iat=DROP),
    "sub-not-a-string": lambda f: f.token(sub=3),
    "jti-not-a-string": lambda f: f.token(jti=12345),
    "fid-not-a-string": lambda f: f.token(fid=["family"]),
    # header parameters
    "crit-unknown": lambda f: f.token(header={"crit": ["exp"]}),
    "crit-unknown-extension": lambda f: f.token(header={"crit": ["x-ext"], "x-ext": 1}),
    "crit-b64": lambda f: f.token(header={"crit": ["b64"], "b64": True}),
    "crit-empty": lambda f: f.token(header={"crit": []}),
    "typ-missing": lambda f: f.token(header={"typ": DROP}),
    "typ-JWT": lambda f: f.token(header={"typ": "JWT"}),
    "typ-refresh": lambda f: f.token(header={"typ": "rt+jwt"}),
    "kid-unknown": lambda f: f.token(header={"kid": "not-a-kid"}),
    "kid-missing": lambda f: f.token(header={"kid": DROP}),
    "kid-not-a-string": lambda f: f.token(header={"kid": 7}),
    "b64-false": lambda f: f.token(header={"b64": False, "crit": ["b64"]}),
    # the token names its own key: never honoured
    "jwk-embedded-attacker-key": _other_key({}, embed_jwk=True),
    "jku-attacker-url": _other_key({"jku": "https://evil.example/jwks.json"}),
    "x5u-attacker-url": _other_key({"x5u": "https://evil.example/cert.pem"}),
    "x5c-attacker-chain": _other_key({"x5c": [b64url(b"not really a certificate")]}),
    # size
    "oversized": lambda f: f.token(pad="x" * MAX_BYTES),
    "oversized-garbage": lambda f: "a" * (MAX_BYTES + 1),
}
