"""`authbench inspect TOKEN`: decode a JWT, say when it expires, verify it, flag what is unsafe.

The article ends with a JWT decoder; this one runs locally and checks the token
against the security rules the targets follow (docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from jwt.warnings import InsecureKeyLengthWarning

KNOWN_ALGS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA")
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
REQUIRED = ("exp", "iat", "sub", "jti", "iss", "aud")
KEY_HEADERS = ("jwk", "jku", "x5u", "x5c")
MAX_LIFETIME = 24 * 3600
MAX_BYTES = 4096


class TokenUnreadable(ValueError):
    """Not three base64url segments of JSON."""


@dataclass
class Inspection:
    """What was found: the decoded parts, flags (level, text), and the signature check."""

    header: dict[str, Any]
    claims: dict[str, Any]
    flags: list[tuple[str, str]] = field(default_factory=list)
    signature: str = "not checked (give --secret, --key or --jwks)"
    is_signature_valid: bool | None = None

    def flag(self, level: str, text: str) -> None:
        self.flags.append((level, text))

    @property
    def has_errors(self) -> bool:
        return any(level == "error" for level, _ in self.flags) or self.is_signature_valid is False


def _segment(text: str, name: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise TokenUnreadable(f"the {name} is not base64url-encoded JSON ({exc})") from None
    if not isinstance(value, dict):
        raise TokenUnreadable(f"the {name} is JSON but not an object")
    return value


def decode_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, without any verification."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenUnreadable(f"a JWS has 3 dot-separated segments, this has {len(parts)}")
    return _segment(parts[0], "header"), _segment(parts[1], "payload")


def human_delta(seconds: float) -> str:
    """'14 min', '3 h 5 min', '2 d 4 h' for a number of seconds."""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def expiry_text(claims: dict[str, Any], now: float) -> str:
    """Expiry in human terms."""
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return "never expires (no exp claim)"
    when = datetime.fromtimestamp(exp, UTC).isoformat(timespec="seconds")
    if exp <= now:
        return f"EXPIRED {human_delta(now - exp)} ago ({when})"
    return f"valid for {human_delta(exp - now)} more (until {when})"


def check_rules(token: str, found: Inspection, now: float) -> None:
    """Flag what docs/security.md forbids or warns about."""
    header, claims = found.header, found.claims
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        found.flag("error", f"alg is {alg!r}: an unsigned token must never be accepted")
    elif alg not in KNOWN_ALGS:
        found.flag("error", f"alg {alg!r} is not a JWS algorithm a verifier should allow")
    for name in KEY_HEADERS:
        if name in header:
            found.flag("error", f"header carries {name!r}: a verifier must never take its key "
                                "from the token")
    if "crit" in header:
        found.flag("warning", f"crit {header['crit']!r}: a verifier must reject extensions it "
                              "does not implement")
    for name in REQUIRED:
        if name not in claims:
            level = "error" if name == "exp" else "warning"
            found.flag(level, f"missing {name!r} claim")
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if name in claims and (not isinstance(value, int | float) or isinstance(value, bool)):
            found.flag("error", f"{name} is {value!r}: a NumericDate must be a JSON number")
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, int | float) and isinstance(iat, int | float) and exp - iat > MAX_LIFETIME:
        found.flag("warning", f"lifetime {human_delta(exp - iat)}: long-lived tokens make "
                              "revocation hard; prefer minutes plus a refresh token")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > now:
        found.flag("warning", f"not valid yet: nbf is {human_delta(nbf - now)} from now")
    if isinstance(exp, int | float) and exp <= now:
        found.flag("error", f"expired {human_delta(now - exp)} ago")
    if len(token) > MAX_BYTES:
        found.flag("warning", f"{len(token)} bytes: larger than the {MAX_BYTES}-byte limit the "
                              "targets apply before decoding")


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key_from_jwks(url: str, header: dict[str, Any]) -> Any:
    if not _is_loopback(url):
        raise ValueError(f"{url}: only JWKS URLs on loopback are fetched (127.0.0.0/8, ::1)")
    document = httpx.get(url, timeout=10).json()
    keys = jwt.PyJWKSet.from_dict(document)
    kid = header.get("kid")
    for key in keys.keys:
        if kid is None or key.key_id == kid:
            return key.key
    raise ValueError(f"no key with kid {kid!r} in {url}")


@dataclass(frozen=True)
class VerifyingKey:
    """The key the user gave, one of three ways."""

    secret: str | None = None  # HMAC secret, as text
    pem_path: str | None = None  # a PEM public (or private) key file
    jwks_url: str | None = None  # a JWKS on loopback

    @property
    def is_given(self) -> bool:
        return any(v is not None for v in (self.secret, self.pem_path, self.jwks_url))


def verify_signature(token: str, found: Inspection, given: VerifyingKey) -> None:
    """Check the signature (and exp/nbf/iat) with the key the user gave."""
    alg = found.header.get("alg")
    key: Any
    try:
        if given.secret is not None:
            secret = given.secret.encode()
            key = secret
            minimum = HMAC_MIN_BYTES.get(str(alg))
            if minimum and len(secret) < minimum:
                found.flag("error", f"HMAC secret of {len(secret)} bytes: {alg} needs at least "
                                    f"{minimum}")
        elif given.pem_path is not None:
            data = Path(given.pem_path).read_bytes()
            try:
                key = serialization.load_pem_public_key(data)
            except ValueError:
                key = serialization.load_pem_private_key(data, password=None).public_key()
        elif given.jwks_url is not None:
            key = _key_from_jwks(given.jwks_url, found.header)
        else:
            raise ValueError("no key given")
        if not isinstance(alg, str) or alg not in KNOWN_ALGS:
            raise ValueError(f"alg {alg!r} is not allowed")
        with warnings.catch_warnings():  # a short secret is flagged above, as an error
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            jwt.decode(token, key, algorithms=[alg],
                       options={"verify_aud": False, "verify_iss": False, "verify_exp": True})
    except (jwt.PyJWTError, ValueError, TypeError, OSError, httpx.HTTPError) as exc:
        found.signature = f"INVALID: {exc}"
        found.is_signature_valid = False
        return
    found.signature = f"valid ({alg})"
    found.is_signature_valid = True


def inspect_token(token: str, now: float | None = None) -> Inspection:
    """Decode and check the rules (no key needed)."""
    header, claims = decode_parts(token)
    found = Inspection(header, claims)
    check_rules(token.strip(), found, time.time() if now is None else now)
    return found


def report_lines(found: Inspection, now: float) -> list[str]:
    """What inspect prints."""
    lines = ["header:", *(f"  {k}: {json.dumps(v)}" for k, v in found.header.items()), "claims:"]
    for name, value in found.claims.items():
        shown = json.dumps(value)
        if name in ("exp", "iat", "nbf") and isinstance(value, int | float) \
                and not isinstance(value, bool):
            shown += f"  ({datetime.fromtimestamp(value, UTC).isoformat(timespec='seconds')})"
        lines.append(f"  {name}: {shown}")
    lines += [f"expiry: {expiry_text(found.claims, now)}", f"signature: {found.signature}"]
    lines += [f"{level.upper()}: {text}" for level, text in found.flags] or ["no problems found"]
    return lines
