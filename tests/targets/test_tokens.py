"""TokenCodec: round trips for every algorithm, and InvalidToken for every bad token.

Each bad token is made with the server's own key and differs from a good one in one
respect only (see tests/targets/jwt_forge.py), so each test shows that one check works.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from targets.keys import KeySet, SigningKey, generate_key
from targets.settings import JWT_ALGORITHMS
from targets.tokens import ACCESS_TOKEN_TYP, AccessClaims, InvalidToken, TokenCodec
from targets.tokens_joserfc import JoserfcCodec
from tests.targets.jwt_forge import (
    AUDIENCE,
    BAD_TOKENS,
    DROP,
    ISSUER,
    MAX_BYTES,
    Forger,
    attacker_key,
    public_pem,
)

LEEWAY = 2.0
# The algorithms the bad-token cases run against: HMAC, RSA, EC and EdDSA.
CASE_ALGS = ["HS256", "RS256", "ES256", "EdDSA"]


@functools.cache
def keyset(alg: str) -> KeySet:
    """One generated key set per algorithm for the whole module (RSA keygen is slow)."""
    return KeySet.generate(alg)


# Every test runs against both JWT_LIB choices: the policy must not depend on the library.
CODECS: dict[str, type[TokenCodec]] = {"pyjwt": TokenCodec, "joserfc": JoserfcCodec}
_library = {"codec": TokenCodec}


@pytest.fixture(autouse=True, params=sorted(CODECS))
def library(request: pytest.FixtureRequest) -> str:
    _library["codec"] = CODECS[request.param]
    return str(request.param)


def make_codec(
    keys: KeySet, leeway: float = LEEWAY, max_bytes: int = MAX_BYTES
) -> TokenCodec:
    return _library["codec"](
        keys, issuer=ISSUER, audience=AUDIENCE, ttl=900, leeway=leeway, max_bytes=max_bytes
    )


def forger(keys: KeySet) -> Forger:
    """Signs like the server: its algorithm, its active kid and key."""
    return Forger(keys.alg, keys.active.kid, keys.active.signing)


def assert_rejected(codec: TokenCodec, token: str, now: float | None = None) -> None:
    with pytest.raises(InvalidToken):
        codec.verify(token, now=now)


# --- good tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
def test_issue_then_verify_round_trips(alg: str) -> None:
    codec = make_codec(keyset(alg))
    token, claims = codec.issue("user7")
    assert codec.verify(token) == claims
    assert claims.sub == "user7" and claims.family is None
    assert claims.exp == int(claims.iat) + 900
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "typ": ACCESS_TOKEN_TYP, "kid": keyset(alg).active.kid}
    with_family, family_claims = codec.issue("user8", family="fam-1")
    assert codec.verify(with_family) == family_claims
    assert family_claims.family == "fam-1"


def test_each_token_gets_its_own_jti_and_ms_iat() -> None:
    codec = make_codec(keyset("HS256"))
    issued = [codec.issue("user1", now=1_700_000_000.123456)[1] for _ in range(20)]
    assert len({claims.jti for claims in issued}) == 20
    assert all(len(claims.jti) >= 22 for claims in issued)  # >= 128 bits
    assert {claims.iat for claims in issued} == {1_700_000_000.123}


@pytest.mark.parametrize("alg", CASE_ALGS)
def test_a_forged_token_without_defect_verifies(alg: str) -> None:
    """The control for every case below: the forger alone does not make tokens invalid."""
    keys = keyset(alg)
    claims = make_codec(keys).verify(forger(keys).token())
    assert isinstance(claims, AccessClaims)
    assert claims.sub == "user3"


def test_tokens_of_another_server_are_rejected() -> None:
    ours, theirs = make_codec(KeySet.generate("HS256")), make_codec(KeySet.generate("HS256"))
    token, _ = theirs.issue("user1")
    assert_rejected(ours, token)


# --- bad tokens, one defect each (the catalogue is in jwt_forge.py) -----------------------


@pytest.mark.parametrize("alg", CASE_ALGS)
@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_token_is_rejected(case: str, alg: str) -> None:
    keys = keyset(alg)
    token = BAD_TOKENS[case](forger(keys))
    assert_rejected(make_codec(keys), token)


# --- algorithm allow-list -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_alg", "token_alg", "key_of"),
    [
        ("HS256", "HS512", "server"),  # the server's own secret, another hash
        ("HS256", "HS384", "server"),
        ("HS512", "HS256", "server"),
        ("RS256", "PS256", "server"),  # the server's own RSA key, another padding
        ("PS256", "RS256", "server"),
        ("ES256", "RS256", "attacker"),
        ("ES256", "ES384", "attacker"),
        ("ES384", "ES256", "attacker"),
        ("EdDSA", "ES256", "attacker"),
        ("RS256", "EdDSA", "attacker"),
        ("RS256", "HS256", "attacker"),
        ("ES256", "HS256", "attacker"),
    ],
)
def test_algorithm_not_on_the_list_is_rejected(
    server_alg: str, token_alg: str, key_of: str
) -> None:
    keys = keyset(server_alg)
    key = keys.active.signing if key_of == "server" else attacker_key(token_alg)
    token = Forger(token_alg, keys.active.kid, key).token()
    assert_rejected(make_codec(keys), token)


def _public_key_bytes(keys: KeySet, form: str) -> bytes:
    public = keys.active.verifying
    assert not isinstance(public, bytes)
    if form == "der":
        return public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if form == "jwk":
        return json.dumps(keys.jwks()["keys"][0]).encode()
    return public_pem(public, form)


@pytest.mark.parametrize("hmac_alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize(
    ("server_alg", "form"),
    [("RS256", "spki"), ("RS256", "pkcs1"), ("RS256", "der"), ("RS256", "jwk"),
     ("PS256", "spki"), ("ES256", "spki"), ("EdDSA", "spki")],
)
def test_hmac_signed_with_the_public_key_is_rejected(
    server_alg: str, form: str, hmac_alg: str
) -> None:
    """The classic key-confusion attack: the public key, as bytes, used as an HMAC secret."""
    keys = keyset(server_alg)
    secret = _public_key_bytes(keys, form)
    codec = make_codec(keys)
    for variant in (secret, secret.rstrip(b"\n")):
        token = Forger(hmac_alg, keys.active.kid, variant).token()
        assert_rejected(codec, token)


# --- several keys: kid selects from the configured map only -------------------------------


@functools.cache
def multi_keyset(alg: str) -> KeySet:
    keys = []
    for kid in ("a", "b", "c"):
        key = generate_key(alg)
        verifying = key if isinstance(key, bytes) else key.public_key()
        keys.append(SigningKey(kid, key, verifying))
    return KeySet(alg, keys, "a")


@pytest.mark.parametrize("alg", ["HS256", "ES256"])
def test_every_configured_kid_verifies_its_own_tokens(alg: str) -> None:
    keys = multi_keyset(alg)
    codec = make_codec(keys)
    token, claims = codec.issue("user2")
    assert jwt.get_unverified_header(token)["kid"] == "a"
    assert codec.verify(token) == claims
    for kid in ("b", "c"):
        assert codec.verify(Forger(alg, kid, keys.by_kid[kid].signing).token()).sub == "user3"


@pytest.mark.parametrize("alg", ["HS256", "ES256"])
@pytest.mark.parametrize(
    "case", ["unknown-kid", "no-kid", "kid-of-another-key", "kid-not-a-string", "kid-list"]
)
def test_bad_kid_with_several_keys_is_rejected(case: str, alg: str) -> None:
    keys = multi_keyset(alg)
    signing = keys.by_kid["a"].signing
    header: dict[str, Any] = {
        "unknown-kid": {"kid": "d"},
        "no-kid": {"kid": DROP},
        "kid-of-another-key": {"kid": "b"},  # signed with a's key
        "kid-not-a-string": {"kid": 1},
        "kid-list": {"kid": ["a"]},
    }[case]
    token = Forger(alg, "a", signing).token(header=header)
    assert_rejected(make_codec(keys), token)


def test_bad_tokens_are_rejected_with_several_keys() -> None:
    """The multi-key path parses the header first: it must fail as cleanly."""
    keys = multi_keyset("HS256")
    codec = make_codec(keys)
    accepted = []
    for case, build in BAD_TOKENS.items():
        try:
            codec.verify(build(Forger("HS256", "a", keys.by_kid["a"].signing)))
        except InvalidToken:
            continue
        accepted.append(case)
    assert accepted == []


# --- leeway and size ----------------------------------------------------------------------


def test_leeway_is_honoured_on_exp() -> None:
    keys = keyset("ES256")
    token = forger(keys).token(iat=1_700_000_000, exp=1_700_000_600)
    lenient, strict = make_codec(keys, leeway=2.0), make_codec(keys, leeway=0.0)
    assert strict.verify(token, now=1_700_000_599.9).exp == 1_700_000_600
    assert_rejected(strict, token, now=1_700_000_600)  # exp is the first moment it is invalid
    assert lenient.verify(token, now=1_700_000_601.9).exp == 1_700_000_600
    assert_rejected(lenient, token, now=1_700_000_602)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_leeway_is_honoured_on_nbf_and_iat(claim: str) -> None:
    keys = keyset("ES256")
    changes: dict[str, Any] = {"iat": 1_700_000_000, "exp": 1_700_000_600, claim: 1_700_000_010}
    token = forger(keys).token(**changes)
    lenient, strict = make_codec(keys, leeway=2.0), make_codec(keys, leeway=0.0)
    assert strict.verify(token, now=1_700_000_010).sub == "user3"
    assert_rejected(strict, token, now=1_700_000_009.9)
    assert lenient.verify(token, now=1_700_000_008).sub == "user3"
    assert_rejected(lenient, token, now=1_700_000_007.9)


def test_the_real_clock_is_the_default() -> None:
    keys = keyset("HS256")
    expired = forger(keys).token(iat=1_700_000_000, exp=1_700_000_600)
    assert_rejected(make_codec(keys), expired)
    assert make_codec(keys).verify(forger(keys).token()).sub == "user3"


def test_size_limit_is_exact() -> None:
    keys = keyset("HS256")
    token, claims = make_codec(keys).issue("user1")
    assert make_codec(keys, max_bytes=len(token)).verify(token) == claims
    assert_rejected(make_codec(keys, max_bytes=len(token) - 1), token)


def test_a_huge_token_is_rejected_quickly() -> None:
    keys = keyset("RS256")
    codec = make_codec(keys)
    huge = forger(keys).token(pad="x" * 1_000_000)
    started = time.perf_counter()
    for _ in range(100):
        assert_rejected(codec, huge)
    assert time.perf_counter() - started < 1.0  # rejected unread: no decoding, no RSA


def test_rsa_public_key_bytes_are_not_an_accepted_secret_even_for_pyjwt() -> None:
    """The attack above is built by hand because PyJWT itself refuses a PEM as HMAC key."""
    public = keyset("RS256").active.verifying
    assert isinstance(public, rsa.RSAPublicKey)
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"sub": "x"}, public_pem(public), algorithm="HS256")

