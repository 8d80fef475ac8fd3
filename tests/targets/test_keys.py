"""Signing keys: generation, files in JWT_KEYS_DIR, load errors, and the published JWKS."""

from __future__ import annotations

import base64
import functools
import secrets
import stat
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from targets.keys import (
    EC_CURVES,
    HMAC_KEY_BYTES,
    KeySet,
    PrivateKey,
    PublicKey,
    generate_key,
    is_hmac,
    write_key,
)
from targets.settings import JWT_ALGORITHMS, ConfigError
from tests.targets.jwt_forge import hmac_digest_size, public_from_jwk

ASYMMETRIC = [alg for alg in JWT_ALGORITHMS if not is_hmac(alg)]
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@functools.cache
def _rsa_key(index: int) -> rsa.RSAPrivateKey:
    """RSA keygen is slow: a few 2048-bit keys per module, shared by RS256 and PS256."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def fresh_key(alg: str, index: int = 0) -> bytes | PrivateKey:
    """A distinct key for alg (cached for RSA)."""
    if alg in ("RS256", "PS256"):
        return _rsa_key(index)
    return generate_key(alg)


def public_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def same_key(a: bytes | PrivateKey, b: bytes | PrivateKey) -> bool:
    if isinstance(a, bytes) or isinstance(b, bytes):
        return a == b
    return public_der(a.public_key()) == public_der(b.public_key())


def signs_and_verifies(keys: KeySet, kid: str) -> None:
    """A token signed with kid's signing key verifies with its verifying key."""
    entry = keys.by_kid[kid]
    token = jwt.encode({"sub": "x"}, entry.signing, algorithm=keys.alg)
    assert jwt.decode(token, entry.verifying, algorithms=[keys.alg]) == {"sub": "x"}


# --- generation ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
def test_generate_gives_one_usable_key_of_the_right_kind(alg: str) -> None:
    keys = KeySet.generate(alg)
    assert keys.alg == alg
    assert keys.is_single
    assert list(keys.by_kid) == [keys.active.kid]
    assert len(keys.active.kid) >= 12
    signing = keys.active.signing
    if is_hmac(alg):
        assert isinstance(signing, bytes)
        assert len(signing) >= hmac_digest_size(alg)
        assert keys.active.verifying == signing
    elif alg in ("RS256", "PS256"):
        assert isinstance(signing, rsa.RSAPrivateKey)
        assert signing.key_size >= 2048
        assert isinstance(keys.active.verifying, rsa.RSAPublicKey)
    elif alg in EC_CURVES:
        assert isinstance(signing, ec.EllipticCurvePrivateKey)
        assert signing.curve.name == EC_CURVES[alg].name
        assert isinstance(keys.active.verifying, ec.EllipticCurvePublicKey)
    else:
        assert isinstance(signing, ed25519.Ed25519PrivateKey)
        assert isinstance(keys.active.verifying, ed25519.Ed25519PublicKey)
    signs_and_verifies(keys, keys.active.kid)


@pytest.mark.parametrize("alg", [*HMAC_KEY_BYTES, "ES256", "EdDSA"])
def test_generated_keys_are_fresh_each_time(alg: str) -> None:
    first, second = KeySet.generate(alg), KeySet.generate(alg)
    assert first.active.kid != second.active.kid
    assert not same_key(first.active.signing, second.active.signing)


@pytest.mark.parametrize("alg", ["none", "HS1024", "RS512", "hs256", ""])
def test_generate_refuses_an_unsupported_algorithm(alg: str) -> None:
    with pytest.raises(ConfigError):
        KeySet.generate(alg)


# --- files: write_key + load --------------------------------------------------------------


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
def test_written_key_loads_back_as_the_same_key(alg: str, tmp_path: Path) -> None:
    key = fresh_key(alg)
    kid = write_key(tmp_path, alg, key)
    suffix = ".key" if is_hmac(alg) else ".pem"
    path = tmp_path / f"{kid}{suffix}"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0  # not readable by others
    keys = KeySet.load(alg, tmp_path)
    assert keys.is_single
    assert keys.active.kid == kid
    assert same_key(keys.active.signing, key)
    # The kid is derived from the key, as KeySet.generate derives it.
    assert write_key(tmp_path / "again", alg, key) == kid
    signs_and_verifies(keys, kid)


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
def test_several_kids_load_and_the_first_by_name_is_active(alg: str, tmp_path: Path) -> None:
    written = {kid: fresh_key(alg, index) for index, kid in enumerate(["k2", "k1", "k3"])}
    for kid, key in written.items():
        assert write_key(tmp_path, alg, key, kid=kid) == kid
    (tmp_path / "README.txt").write_text("ignored: neither .pem nor .key")
    keys = KeySet.load(alg, tmp_path)
    assert sorted(keys.by_kid) == ["k1", "k2", "k3"]
    assert not keys.is_single
    assert keys.active.kid == "k1"
    for kid, key in written.items():
        assert same_key(keys.by_kid[kid].signing, key)
        signs_and_verifies(keys, kid)


@pytest.mark.parametrize("alg", ["HS256", "ES256", "RS256"])
def test_jwt_active_kid_chooses_the_signing_key(alg: str, tmp_path: Path) -> None:
    for index, kid in enumerate(["old", "new"]):
        write_key(tmp_path, alg, fresh_key(alg, index), kid=kid)
    assert KeySet.load(alg, tmp_path, active_kid="old").active.kid == "old"
    assert KeySet.load(alg, tmp_path, active_kid="new").active.kid == "new"
    with pytest.raises(ConfigError, match="JWT_ACTIVE_KID"):
        KeySet.load(alg, tmp_path, active_kid="missing")


def test_hmac_key_file_in_unpadded_base64url_loads(tmp_path: Path) -> None:
    secret = secrets.token_bytes(32)
    text = base64.urlsafe_b64encode(secret).rstrip(b"=")  # as JOSE writes base64url
    (tmp_path / "k.key").write_bytes(text + b"\n")
    assert KeySet.load("HS256", tmp_path).active.signing == secret


# --- load errors --------------------------------------------------------------------------


def test_empty_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JWT_KEYS_DIR"):
        KeySet.load("HS256", tmp_path)


def test_keys_for_another_family_are_not_picked_up(tmp_path: Path) -> None:
    pems, secrets_dir = tmp_path / "pems", tmp_path / "secrets"
    write_key(pems, "ES256", generate_key("ES256"))
    write_key(secrets_dir, "HS256", generate_key("HS256"))
    with pytest.raises(ConfigError, match=r"no \*\.key files"):
        KeySet.load("HS256", pems)
    with pytest.raises(ConfigError, match=r"no \*\.pem files"):
        KeySet.load("EdDSA", secrets_dir)


@pytest.mark.parametrize(
    ("alg", "length"), [("HS256", 31), ("HS256", 0), ("HS384", 32), ("HS512", 48)]
)
def test_hmac_secret_shorter_than_the_hash_is_refused(
    alg: str, length: int, tmp_path: Path
) -> None:
    write_key(tmp_path, alg, secrets.token_bytes(length), kid="short")
    with pytest.raises(ConfigError, match=f"at least {HMAC_KEY_BYTES[alg]} bytes"):
        KeySet.load(alg, tmp_path)


def test_one_bad_key_among_good_ones_fails_the_load(tmp_path: Path) -> None:
    write_key(tmp_path, "HS256", secrets.token_bytes(32), kid="a-good")
    write_key(tmp_path, "HS256", secrets.token_bytes(16), kid="b-short")
    with pytest.raises(ConfigError, match="b-short"):
        KeySet.load("HS256", tmp_path)


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_rsa_key_below_2048_bits_is_refused(alg: str, tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    write_key(tmp_path, alg, small)
    with pytest.raises(ConfigError, match="2048"):
        KeySet.load(alg, tmp_path)


@pytest.mark.parametrize(
    ("alg", "curve"),
    [("ES256", ec.SECP384R1()), ("ES384", ec.SECP256R1()), ("ES256", ec.SECP256K1()),
     ("ES384", ec.SECP521R1())],
    ids=["ES256-P384", "ES384-P256", "ES256-secp256k1", "ES384-P521"],
)
def test_ec_key_on_the_wrong_curve_is_refused(
    alg: str, curve: ec.EllipticCurve, tmp_path: Path
) -> None:
    write_key(tmp_path, alg, ec.generate_private_key(curve))
    with pytest.raises(ConfigError, match=EC_CURVES[alg].name):
        KeySet.load(alg, tmp_path)


@pytest.mark.parametrize(
    ("alg", "other"),
    [("RS256", "ES256"), ("PS256", "EdDSA"), ("ES256", "RS256"), ("ES384", "EdDSA"),
     ("EdDSA", "ES256"), ("EdDSA", "RS256")],
)
def test_key_of_the_wrong_type_is_refused(alg: str, other: str, tmp_path: Path) -> None:
    write_key(tmp_path, alg, fresh_key(other))
    with pytest.raises(ConfigError, match=f"not a key for {alg}"):
        KeySet.load(alg, tmp_path)


def test_ed448_key_is_refused_for_eddsa(tmp_path: Path) -> None:
    write_key(tmp_path, "EdDSA", ed448.Ed448PrivateKey.generate(), kid="ed448")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ed448"):
        KeySet.load("EdDSA", tmp_path)


def _pem_of(key: PrivateKey, encryption: serialization.KeySerializationEncryption) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


GARBAGE_PEMS = {
    "text": b"this is not a key\n",
    "empty": b"",
    "bad-base64": b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
}


@pytest.mark.parametrize("name", [*GARBAGE_PEMS, "truncated", "public-key", "encrypted"])
def test_unreadable_pem_is_a_config_error(name: str, tmp_path: Path) -> None:
    key = generate_key("ES256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    if name == "truncated":
        data = _pem_of(key, serialization.NoEncryption())[:80]
    elif name == "public-key":
        data = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif name == "encrypted":
        data = _pem_of(key, serialization.BestAvailableEncryption(b"passphrase"))
    else:
        data = GARBAGE_PEMS[name]
    (tmp_path / "k.pem").write_bytes(data)
    with pytest.raises(ConfigError, match=r"k\.pem"):
        KeySet.load("ES256", tmp_path)


def test_unreadable_hmac_key_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "k.key").write_bytes(b"abcde")  # 5 base64 characters can't be decoded
    with pytest.raises(ConfigError, match=r"k\.key"):
        KeySet.load("HS256", tmp_path)


def test_a_keyset_needs_a_key_and_a_known_active_kid() -> None:
    with pytest.raises(ConfigError):
        KeySet("HS256", [], "")
    keys = KeySet.generate("HS256")
    with pytest.raises(ConfigError, match="JWT_ACTIVE_KID"):
        KeySet("HS256", list(keys.by_kid.values()), "other")


# --- JWKS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_jwks_publishes_every_public_key_and_nothing_private(alg: str, tmp_path: Path) -> None:
    for index, kid in enumerate(["a", "b"]):
        write_key(tmp_path, alg, fresh_key(alg, index), kid=kid)
    keys = KeySet.load(alg, tmp_path)
    published = keys.jwks()
    assert set(published) == {"keys"}
    assert [jwk["kid"] for jwk in published["keys"]] == ["a", "b"]
    for jwk in published["keys"]:
        assert not PRIVATE_JWK_MEMBERS & set(jwk), sorted(jwk)
        assert jwk["alg"] == alg and jwk["use"] == "sig"
        expected_kty = {"RS256": "RSA", "PS256": "RSA", "EdDSA": "OKP"}.get(alg, "EC")
        assert jwk["kty"] == expected_kty
        public = public_from_jwk(jwk)
        verifying = keys.by_kid[jwk["kid"]].verifying
        assert not isinstance(verifying, bytes)
        assert public_der(public) == public_der(verifying)


@pytest.mark.parametrize("alg", list(HMAC_KEY_BYTES))
def test_jwks_is_empty_for_hmac(alg: str) -> None:
    keys = KeySet.generate(alg)
    assert keys.jwks() == {"keys": []}
