"""Signing keys: generated at start or loaded from files, parsed once, selected by kid."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from targets.settings import ConfigError

HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
EC_CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def is_hmac(alg: str) -> bool:
    """True for the shared-secret algorithms HS256/384/512."""
    return alg in HMAC_KEY_BYTES


@dataclass(frozen=True)
class SigningKey:
    """One key of the key map: what signs (private or secret) and what verifies."""

    kid: str
    signing: bytes | PrivateKey
    verifying: bytes | PublicKey


def generate_key(alg: str, rsa_bits: int = 2048) -> bytes | PrivateKey:
    """A fresh key for alg: a CSPRNG secret as long as the hash, or a private key."""
    if is_hmac(alg):
        return secrets.token_bytes(HMAC_KEY_BYTES[alg])
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if alg in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[alg])
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"JWT_ALG={alg!r} is not supported")


def _check_key_fits(alg: str, key: bytes | PrivateKey, source: str) -> None:
    if is_hmac(alg):
        if not isinstance(key, bytes) or len(key) < HMAC_KEY_BYTES[alg]:
            raise ConfigError(
                f"{source}: {alg} needs a secret of at least {HMAC_KEY_BYTES[alg]} bytes"
            )
        return
    expected: type
    if alg in ("RS256", "PS256"):
        expected = rsa.RSAPrivateKey
    elif alg in EC_CURVES:
        expected = ec.EllipticCurvePrivateKey
    elif alg == "EdDSA":
        expected = ed25519.Ed25519PrivateKey
    else:
        raise ConfigError(f"JWT_ALG={alg!r} is not supported")
    if not isinstance(key, expected):
        raise ConfigError(f"{source}: not a key for {alg}")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        raise ConfigError(f"{source}: RSA keys must be at least 2048 bits")
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name != EC_CURVES[alg].name:
        raise ConfigError(f"{source}: {alg} needs curve {EC_CURVES[alg].name}")


def _public_of(key: bytes | PrivateKey) -> bytes | PublicKey:
    return key if isinstance(key, bytes) else key.public_key()


def _kid_for(key: bytes | PrivateKey) -> str:
    if isinstance(key, bytes):
        material = hashlib.sha256(b"authbench-kid" + key).digest()
    else:
        material = hashlib.sha256(
            key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).digest()
    return base64.urlsafe_b64encode(material[:9]).decode()


def write_key(directory: Path, alg: str, key: bytes | PrivateKey, kid: str | None = None) -> str:
    """Save a key where JWT_KEYS_DIR can load it (mode 0600); return its kid."""
    kid = kid or _kid_for(key)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(key, bytes):
        path, data = directory / f"{kid}.key", base64.urlsafe_b64encode(key)
    else:
        path = directory / f"{kid}.pem"
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    # Written whole or not at all, and private from the first byte: a temporary file
    # created 0600, then renamed into place.
    partial = directory / f".{path.name}.partial"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)
    return kid


def _read_key(path: Path) -> bytes | PrivateKey:
    data = path.read_bytes()
    if path.suffix == ".key":
        text = data.strip()
        try:  # base64url as JOSE writes it (no padding) or padded, as write_key does
            return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
        except ValueError as exc:
            raise ConfigError(f"{path}: not base64url: {exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # TypeError: encrypted
        raise ConfigError(f"{path}: not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{path}: unsupported key type {type(key).__name__}")
    return key


class KeySet:
    """The configured keys of one algorithm; the active one signs, any verifies."""

    def __init__(self, alg: str, keys: list[SigningKey], active_kid: str) -> None:
        if not keys:
            raise ConfigError("no signing keys configured")
        self.alg = alg
        self.by_kid = {key.kid: key for key in keys}
        if active_kid not in self.by_kid:
            raise ConfigError(f"JWT_ACTIVE_KID={active_kid!r} is not among {sorted(self.by_kid)}")
        self.active = self.by_kid[active_kid]

    @classmethod
    def generate(cls, alg: str, rsa_bits: int = 2048) -> KeySet:
        """One new key, as a single-node target starts with."""
        key = generate_key(alg, rsa_bits)
        kid = _kid_for(key)
        return cls(alg, [SigningKey(kid, key, _public_of(key))], kid)

    @classmethod
    def load(cls, alg: str, directory: Path, active_kid: str = "") -> KeySet:
        """Every <kid>.pem / <kid>.key file in directory; rotation = add a file."""
        suffix = ".key" if is_hmac(alg) else ".pem"
        paths = sorted(p for p in directory.iterdir() if p.suffix == suffix)
        if not paths:
            raise ConfigError(f"JWT_KEYS_DIR={directory}: no *{suffix} files for {alg}")
        keys = []
        for path in paths:
            key = _read_key(path)
            _check_key_fits(alg, key, str(path))
            keys.append(SigningKey(path.stem, key, _public_of(key)))
        return cls(alg, keys, active_kid or keys[0].kid)

    @property
    def is_single(self) -> bool:
        """True when one key verifies everything (no kid lookup needed)."""
        return len(self.by_kid) == 1

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys as a JWK Set; empty for HMAC, whose keys are secret."""
        if is_hmac(self.alg):
            return {"keys": []}
        published = []
        for key in self.by_kid.values():
            public = key.verifying
            jwk: dict[str, Any]
            if isinstance(public, rsa.RSAPublicKey):
                jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
            elif isinstance(public, ec.EllipticCurvePublicKey):
                jwk = ECAlgorithm.to_jwk(public, as_dict=True)
            elif isinstance(public, ed25519.Ed25519PublicKey):
                jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
            else:
                raise ConfigError(f"kid {key.kid}: no public key to publish")
            jwk.update({"kid": key.kid, "alg": self.alg, "use": "sig"})
            published.append(jwk)
        return {"keys": published}
