"""The crypto floor: the raw `cryptography` verify of a token's signing input."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

HASHES = {"256": (hashlib.sha256, hashes.SHA256), "384": (hashlib.sha384, hashes.SHA384),
          "512": (hashlib.sha512, hashes.SHA512)}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_verifier(alg: str, key: Any, token: str) -> Callable[[], object]:
    """A no-argument callable that verifies token's signature with the bare primitive.

    Everything a library adds (parsing, base64, JSON, claim checks, key preparation)
    is done once here, outside the timed call.
    """
    header, payload, signature = token.split(".")
    message = f"{header}.{payload}".encode()
    sig = _unb64(signature)
    if alg.startswith("HS"):
        digest = HASHES[alg[2:]][0]
        return lambda: hmac.compare_digest(hmac.digest(key, message, digest), sig)
    public = key.public_key()
    if alg == "EdDSA":
        assert isinstance(public, ed25519.Ed25519PublicKey)
        return lambda: public.verify(sig, message)
    algorithm = HASHES[alg[2:]][1]()
    if alg.startswith("ES"):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        half = len(sig) // 2
        der = encode_dss_signature(int.from_bytes(sig[:half], "big"),
                                   int.from_bytes(sig[half:], "big"))
        return lambda: public.verify(der, message, ec.ECDSA(algorithm))
    assert isinstance(public, rsa.RSAPublicKey)
    if alg.startswith("PS"):
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
        return lambda: public.verify(sig, message, pss, algorithm)
    return lambda: public.verify(sig, message, padding.PKCS1v15(), algorithm)
