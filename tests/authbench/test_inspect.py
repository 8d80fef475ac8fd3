"""authbench inspect with good and bad tokens, keys and JWKS."""

from __future__ import annotations

import base64
import hmac
import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authbench.cli import main
from authbench.inspect import human_delta
from targets.keys import KeySet, SigningKey
from targets.tokens import TokenCodec
from tests.conftest import StartTarget

SECRET = "s" * 32


def hs256_token(**overrides: object) -> str:
    now = int(time.time())
    claims = {"iss": "authbench", "aud": "authbench-api", "sub": "user1", "jti": "j1",
              "iat": now, "exp": now + 900, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["inspect", *args])
    return code, capsys.readouterr().out


def test_good_token_with_its_secret(capsys: pytest.CaptureFixture[str]) -> None:
    keys = KeySet("HS256", [SigningKey("k1", SECRET.encode(), SECRET.encode())], "k1")
    token, _ = TokenCodec(keys, "authbench", "authbench-api", 900, 2, 4096).issue("user1")
    code, out = run(capsys, token, "--secret", SECRET)
    assert code == 0, out
    assert "signature: valid (HS256)" in out
    assert "expiry: valid for 14 min" in out or "expiry: valid for 15 min" in out
    assert "no problems found" in out
    assert '  sub: "user1"' in out


def test_wrong_secret_and_short_secret(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, hs256_token(), "--secret", "x" * 32)
    assert code == 1 and "signature: INVALID: Signature verification failed" in out
    code, out = run(capsys, hs256_token(), "--secret", "short")
    assert code == 1 and "HMAC secret of 5 bytes: HS256 needs at least 32" in out


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_and_key_headers_are_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    unsigned = f"{b64({'alg': 'none'})}.{b64({'sub': 'admin'})}."
    code, out = run(capsys, unsigned)
    assert code == 1
    assert "ERROR: alg is 'none'" in out
    assert "ERROR: missing 'exp' claim" in out
    assert "expiry: never expires (no exp claim)" in out
    with_jwk = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256",
                          headers={"jwk": {"kty": "oct", "k": "AAAA"}})
    code, out = run(capsys, with_jwk)
    assert code == 1 and "header carries 'jwk'" in out


def test_expired_and_long_lived_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    now = int(time.time())
    code, out = run(capsys, hs256_token(iat=now - 7200, exp=now - 3600))
    assert code == 1
    assert "expiry: EXPIRED 1 h 0 min ago" in out
    code, out = run(capsys, hs256_token(iat=now, exp=now + 30 * 86400))
    assert code == 0  # a warning, not an error
    assert "WARNING: lifetime 30 d 0 h" in out


def test_rs256_with_a_public_key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, private, algorithm="RS256")
    public = tmp_path / "public.pem"
    public.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    code, out = run(capsys, token, "--key", str(public))
    assert "signature: valid (RS256)" in out
    assert code == 0  # missing iat, jti, iss, aud are warnings, not errors
    assert "WARNING: missing 'jti' claim" in out
    # The classic confusion: an HS256 token whose "secret" is the public key PEM.
    signing_input = f"{b64({'alg': 'HS256'})}.{b64({'sub': 'u'})}".encode()
    signature = hmac.digest(public.read_bytes(), signing_input, "sha256")
    forged = f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    code, out = run(capsys, forged, "--key", str(public))
    assert code == 1 and "signature: INVALID" in out


def test_jwks_of_a_live_target(capsys: pytest.CaptureFixture[str],
                               start_target: StartTarget) -> None:
    target = start_target(AUTH_MODE="jwt", JWT_ALG="ES256")
    login = httpx.post(f"{target.url}/auth/login",
                       json={"username": "user1", "password": "pw-user1"})
    token = login.json()["access_token"]
    code, out = run(capsys, token, "--jwks", f"{target.url}/.well-known/jwks.json")
    assert code == 0, out
    assert "signature: valid (ES256)" in out


def test_jwks_off_loopback_is_never_fetched(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, hs256_token(), "--jwks", "http://192.0.2.1/jwks.json")
    assert code == 1
    assert "only JWKS URLs on loopback" in out


def test_garbage_is_not_a_jwt(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "not-a-token")[0] == 2
    code, out = run(capsys, "a.b.c")
    assert code == 2 and "not base64url-encoded JSON" in out


def test_human_delta() -> None:
    assert human_delta(42) == "42 s"
    assert human_delta(14 * 60 + 5) == "14 min 5 s"
    assert human_delta(3 * 3600 + 300) == "3 h 5 min"
    assert human_delta(2 * 86400 + 4 * 3600) == "2 d 4 h"
