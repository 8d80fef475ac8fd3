"""Bad input to live targets: 401 (or 400/413/431), never 5xx.

The targets run in this process (tests.support.InProcessTarget): an exception inside
the app fails the test even where the answer looked fine. What uvicorn's HTTP parser
adds (header limits, chunked bodies) is checked against one real uvicorn target.

The bearer targets load their keys from JWT_KEYS_DIR, written here, so the tests can
sign tokens with the server's own key and give each exactly one defect.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from authbench.infra.launcher import TargetProcess
from targets.keys import generate_key, is_hmac, write_key
from tests.support import FAST_KDF, InProcessTarget
from tests.targets.jwt_forge import (
    BAD_TOKENS,
    DROP,
    Forger,
    b64url,
    flip_bit,
    public_from_jwk,
    public_pem,
    unb64url,
    with_payload,
)

SEED = {**FAST_KDF, "SEED_USERS": "20", "STORE": "memory"}
OVERSIZE = [8 * 1024, 64 * 1024]
CLIENT_ERRORS = {400, 413, 431}


@dataclass(frozen=True)
class BearerVariant:
    id: str
    mode: str
    alg: str
    kids: tuple[str, ...]
    other_alg: str  # an algorithm the server must refuse...
    other_alg_takes_server_key: bool  # ...signed with the server's own key if it fits

    @property
    def is_multi_key(self) -> bool:
        return len(self.kids) > 1


BEARER_VARIANTS = [
    BearerVariant("jwt-HS256-two-keys", "jwt", "HS256", ("k1", "k2"), "HS512", True),
    BearerVariant("jwt-RS256", "jwt", "RS256", ("rsa-1",), "PS256", True),
    BearerVariant("hybrid-ES256", "hybrid", "ES256", ("ec-1",), "ES384", False),
]


@dataclass
class Live:
    """One HTTP client of a running target (a client costs ~25 ms to create)."""

    http: httpx.Client

    def client(self) -> contextlib.nullcontext[httpx.Client]:
        self.http.cookies.clear()  # every credential is sent explicitly
        return contextlib.nullcontext(self.http)


@dataclass
class Bearer(Live):
    variant: BearerVariant
    forgers: dict[str, Forger]  # by kid; the first kid is the active one

    @property
    def forger(self) -> Forger:
        return self.forgers[self.variant.kids[0]]


@contextlib.contextmanager
def _running(env: dict[str, str]) -> Iterator[httpx.Client]:
    with InProcessTarget(env) as target, target.client() as http:
        yield http


@pytest.fixture(scope="module", params=BEARER_VARIANTS, ids=lambda v: v.id)
def bearer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bearer]:
    variant: BearerVariant = request.param
    keys_dir = tmp_path_factory.mktemp("keys")
    forgers = {}
    for kid in variant.kids:
        key = generate_key(variant.alg)
        write_key(keys_dir, variant.alg, key, kid=kid)
        forgers[kid] = Forger(variant.alg, kid, key)
    env = {
        **SEED,
        "AUTH_MODE": variant.mode,
        "JWT_ALG": variant.alg,
        "JWT_KEYS_DIR": str(keys_dir),
        "JWT_ACTIVE_KID": variant.kids[0],
        "JWT_REVOCATION": "blocklist",
    }
    with _running(env) as http:
        yield Bearer(http, variant, forgers)


@pytest.fixture(scope="module")
def session_target() -> Iterator[Live]:
    with _running({**SEED, "AUTH_MODE": "session"}) as http:
        yield Live(http)


@pytest.fixture(scope="module")
def uvicorn_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A session target behind real uvicorn, for what its HTTP parser adds."""
    log = tmp_path_factory.mktemp("target") / "target.log"
    target = TargetProcess({**SEED, "AUTH_MODE": "session"}, log_path=log)
    target.start()
    try:
        target.wait_ready()
        with httpx.Client(base_url=target.url, timeout=5.0) as http:
            yield Live(http)
    finally:
        target.stop()
    # No bad input may have raised inside the target, even where the answer looked fine.
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text()[-3000:]


def login(client: httpx.Client, user: str = "user3") -> httpx.Response:
    answer = client.post("/auth/login", json={"username": user, "password": f"pw-{user}"})
    assert answer.status_code == 200, answer.text
    client.cookies.clear()  # every credential below is sent explicitly
    return answer


def access_token(client: httpx.Client, user: str = "user3") -> str:
    token: str = login(client, user).json()["access_token"]
    return token


def me_with(client: httpx.Client, authorization: str) -> httpx.Response:
    # Surrounding whitespace is not part of a header value (RFC 9110 5.5); httpx refuses it.
    return client.get("/api/me", headers={"Authorization": authorization.strip()})


def assert_bearer_401(answer: httpx.Response) -> None:
    assert answer.status_code == 401, (answer.status_code, answer.text)
    challenge = answer.headers["www-authenticate"]
    sent = "authorization" in answer.request.headers
    expected = 'Bearer realm="authbench"' + (', error="invalid_token"' if sent else "")
    assert challenge == expected, answer.headers
    assert answer.json() == {"error": "unauthorized"}  # nothing about why


def assert_refused(answer: httpx.Response, is_bearer: bool) -> None:
    """401, or a client error for a malformed or oversized request; never 5xx."""
    assert answer.status_code < 500, (answer.status_code, answer.text[:200])
    if answer.status_code == 401:
        if is_bearer:
            assert answer.headers["www-authenticate"].startswith("Bearer ")
    else:
        assert answer.status_code in CLIENT_ERRORS, answer.status_code


# --- bearer targets: controls ---------------------------------------------------------


def test_good_tokens_are_accepted(bearer: Bearer) -> None:
    """The controls: the server's token, and a forged one without defect, both work."""
    with bearer.client() as client:
        issued = access_token(client)
        assert me_with(client, f"Bearer {issued}").json()["user"] == "user3"
        assert me_with(client, f"bearer {issued}").status_code == 200  # scheme is case-blind
        for forger in bearer.forgers.values():  # every configured kid verifies
            answer = me_with(client, f"Bearer {forger.token()}")
            assert answer.status_code == 200, (forger.kid, answer.text)


# --- bearer targets: one defect per token ---------------------------------------------


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_bearer_token_is_401(bearer: Bearer, case: str) -> None:
    token = BAD_TOKENS[case](bearer.forger)
    with bearer.client() as client:
        assert_bearer_401(me_with(client, f"Bearer {token}"))


def _claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(unb64url(token.split(".")[1]))
    return claims


def _tampered(issued: str) -> list[str]:
    return [
        with_payload(issued, sub="user0"),
        with_payload(issued, exp=_claims_of(issued)["exp"] + 3600),
        flip_bit(issued, 2, 0),
        flip_bit(issued, 2, -1),
        issued[:-2],
        issued.rsplit(".", 1)[0],
        issued + ".",
    ]


def test_server_issued_token_tampered_is_401(bearer: Bearer) -> None:
    with bearer.client() as client:
        for token in _tampered(access_token(client)):
            assert_bearer_401(me_with(client, f"Bearer {token}"))


def test_other_algorithm_with_the_server_key_is_401(bearer: Bearer) -> None:
    variant, forger = bearer.variant, bearer.forger
    key = forger.key if variant.other_alg_takes_server_key else generate_key(variant.other_alg)
    token = Forger(variant.other_alg, forger.kid, key).token()
    with bearer.client() as client:
        assert_bearer_401(me_with(client, f"Bearer {token}"))


def test_hmac_signed_with_the_published_public_key_is_401(bearer: Bearer) -> None:
    """Key confusion: rebuild the PEM from the JWKS and use it as an HMAC secret."""
    with bearer.client() as client:
        jwks = client.get("/.well-known/jwks.json")
        if is_hmac(bearer.variant.alg):
            assert jwks.status_code == 404  # nothing public to confuse with
            return
        assert jwks.status_code == 200
        (jwk,) = jwks.json()["keys"]
        assert "d" not in jwk
        public = public_from_jwk(jwk)
        for form in ("spki", "pkcs1") if jwk["kty"] == "RSA" else ("spki",):
            pem = public_pem(public, form)
            for secret in (pem, pem.rstrip(b"\n")):
                for alg in ("HS256", "HS384", "HS512"):
                    token = Forger(alg, jwk["kid"], secret).token()
                    assert_bearer_401(me_with(client, f"Bearer {token}"))


def test_unknown_kid_is_401(bearer: Bearer) -> None:
    forger = bearer.forger
    with bearer.client() as client:
        for kid in ("nope", "", DROP):
            assert_bearer_401(me_with(client, f"Bearer {forger.token(header={'kid': kid})}"))
        if bearer.variant.is_multi_key:  # the other kid, but signed with the active key
            second = bearer.variant.kids[1]
            token = forger.token(header={"kid": second})
            assert_bearer_401(me_with(client, f"Bearer {token}"))


# --- bearer targets: headers ----------------------------------------------------------


@pytest.mark.parametrize("size", OVERSIZE)
def test_oversized_authorization_header_is_refused(bearer: Bearer, size: int) -> None:
    with bearer.client() as client:
        issued = access_token(client)
        for value in (
            "Bearer " + "a" * size,
            f"Bearer {issued}" + "A" * size,  # a valid token made too long
            "Bearer " + bearer.forger.token(pad="x" * size),  # validly signed, too long
        ):
            assert_refused(me_with(client, value), is_bearer=True)


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjM6cHctdXNlcjM=",
        "Basic",
        "Bearer",
        "Bearer  ",
        "Digest username=user3",
        "Token {token}",
        "{token}",
        "Bearer{token}",
        "Bearer: {token}",
    ],
)
def test_other_schemes_and_shapes_are_401(bearer: Bearer, value: str) -> None:
    with bearer.client() as client:
        token = access_token(client)
        assert_bearer_401(me_with(client, value.format(token=token)))


def test_no_or_bad_credential_is_401_on_every_protected_route(bearer: Bearer) -> None:
    token = BAD_TOKENS["alg-none"](bearer.forger)
    with bearer.client() as client:
        for method, path in [("GET", "/api/me"), ("POST", "/api/items"),
                             ("POST", "/auth/logout"), ("GET", "/auth/sessions"),
                             ("DELETE", "/auth/sessions")]:
            assert_bearer_401(client.request(method, path, json={}))
            assert_bearer_401(
                client.request(method, path, json={}, headers={"Authorization": f"Bearer {token}"})
            )


def test_token_used_after_logout_is_401(bearer: Bearer) -> None:
    with bearer.client() as client:
        token = access_token(client)
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/me", headers=auth).status_code == 200
        out = client.post("/auth/logout", headers=auth)
        assert out.status_code == 200 and out.json()["revoked"] is True
        assert_bearer_401(client.get("/api/me", headers=auth))
        assert_bearer_401(client.post("/api/items", json={"a": 1}, headers=auth))
        assert_bearer_401(client.post("/auth/logout", headers=auth))
        # The same token re-encoded (JSON reformatted, same claims) is still revoked:
        # revocation is by jti, not by the token string.
        claims = _claims_of(token)
        again = bearer.forger.token(**{k: claims[k] for k in ("iat", "exp", "jti", "sub")})
        assert again != token
        assert_bearer_401(client.get("/api/me", headers={"Authorization": f"Bearer {again}"}))


# --- items: bodies --------------------------------------------------------------------


NOT_AN_OBJECT = [b"[1, 2]", b'"item"', b"3", b"null", b"true", b"not json", b"", b"{", b"\xff"]


def _post_item(client: httpx.Client, headers: dict[str, str], body: bytes) -> httpx.Response:
    return client.post(
        "/api/items", content=body, headers={**headers, "Content-Type": "application/json"}
    )


def test_item_that_is_not_an_object_is_400_with_bearer(bearer: Bearer) -> None:
    with bearer.client() as client:
        auth = {"Authorization": f"Bearer {access_token(client)}"}
        assert _post_item(client, auth, b'{"name": "a"}').status_code == 201
        for body in NOT_AN_OBJECT:
            answer = _post_item(client, auth, body)
            assert answer.status_code == 400, (body, answer.status_code, answer.text)
        assert _post_item(client, auth, b'{"a": "' + b"x" * 20_000 + b'"}').status_code == 413


def test_item_that_is_not_an_object_is_400_with_session(session_target: Live) -> None:
    with session_target.client() as client:
        answer = login(client)
        headers = {"Cookie": f"sid={answer.cookies['sid']}",
                   "X-CSRF-Token": answer.json()["csrf_token"]}
        assert _post_item(client, headers, b'{"name": "a"}').status_code == 201
        for body in NOT_AN_OBJECT:
            answer = _post_item(client, headers, body)
            assert answer.status_code == 400, (body, answer.status_code, answer.text)


# --- login bodies ---------------------------------------------------------------------


BAD_LOGIN_BODIES: dict[str, tuple[bytes, int]] = {
    "not-json": (b"username=user3&password=pw-user3", 400),
    "empty": (b"", 400),
    "truncated-json": (b'{"username": "user3", "password": "pw-', 400),
    "not-utf8": (b'{"username": "user3\xff", "password": "pw-user3"}', 400),
    "lone-surrogate": (b'{"username": "\\ud800", "password": "x"}', 400),
    "deeply-nested": (b"[" * 2000 + b"]" * 2000, 400),
    "json-array": (b'["user3", "pw-user3"]', 400),
    "json-string": (b'"user3"', 400),
    "json-number": (b"3", 400),
    "json-null": (b"null", 400),
    "missing-password": (b'{"username": "user3"}', 400),
    "missing-username": (b'{"password": "pw-user3"}', 400),
    "empty-object": (b"{}", 400),
    "username-number": (b'{"username": 3, "password": "pw-user3"}', 400),
    "username-list": (b'{"username": ["user3"], "password": "pw-user3"}', 400),
    "password-number": (b'{"username": "user3", "password": 3}', 400),
    "password-null": (b'{"username": "user3", "password": null}', 400),
    "password-object": (b'{"username": "user3", "password": {"$ne": ""}}', 400),
    "username-too-long": (
        json.dumps({"username": "user3" + "0" * 64, "password": "x"}).encode(), 400
    ),
    "body-100KB": (
        json.dumps({"username": "user3", "password": "x" * 100_000}).encode(), 413
    ),
    "password-too-long": (  # within the body limit, beyond the KDF's: generic 401
        json.dumps({"username": "user3", "password": "pw-user3" + "x" * 2000}).encode(), 401
    ),
    "unknown-user": (b'{"username": "mallory", "password": "x"}', 401),
    "wrong-password": (b'{"username": "user3", "password": "pw-user4"}', 401),
}


def _check_login(live: Live, case: str) -> None:
    body, expected = BAD_LOGIN_BODIES[case]
    with live.client() as client:
        answer = client.post(
            "/auth/login", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == expected, (answer.status_code, answer.text[:200])
    assert "set-cookie" not in answer.headers
    assert "access_token" not in answer.text


@pytest.mark.parametrize("case", list(BAD_LOGIN_BODIES))
def test_bad_login_body_with_bearer(bearer: Bearer, case: str) -> None:
    _check_login(bearer, case)


@pytest.mark.parametrize("case", list(BAD_LOGIN_BODIES))
def test_bad_login_body_with_session(session_target: Live, case: str) -> None:
    _check_login(session_target, case)


@pytest.mark.parametrize("where", ["session_target", "uvicorn_target"])
def test_huge_login_body_without_content_length_is_413(
    request: pytest.FixtureRequest, where: str
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    live: Live = request.getfixturevalue(where)
    with live.client() as client:
        answer = client.post("/auth/login", content=chunks())
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert answer.status_code == 413


# --- session target -------------------------------------------------------------------


def _me_with_sid(client: httpx.Client, sid: str) -> httpx.Response:
    return client.get("/api/me", headers={"Cookie": f"sid={sid}"})


def test_issued_session_is_accepted(session_target: Live) -> None:
    with session_target.client() as client:
        sid = login(client).cookies["sid"]
        assert _me_with_sid(client, sid).json()["user"] == "user3"


def _malformed_sids(real: str) -> dict[str, str]:
    swapped = ("B" if real[0] != "B" else "C") + real[1:]
    return {
        "never-issued": secrets.token_urlsafe(32),
        "one-char-changed": swapped,
        "too-short": secrets.token_urlsafe(16),
        "too-long": secrets.token_urlsafe(33),
        "real-plus-one": real + "A",
        "real-minus-one": real[:-1],
        "standard-base64": "+/" * 21 + "=",
        "dots": "." * 43,
        "percent-encoded": real[:20] + "%2B" + real[23:],
        "space-inside": real[:20] + " " + real[21:],
        "quoted": f'"{real[1:-1]}"',
        "empty": "",
        "hashed-form": secrets.token_hex(32),  # what the store keys look like
    }


@pytest.mark.parametrize("case", list(_malformed_sids("A" * 43)))
def test_bad_session_id_is_401(session_target: Live, case: str) -> None:
    with session_target.client() as client:
        real = login(client).cookies["sid"]
        sid = _malformed_sids(real)[case]
        answer = _me_with_sid(client, sid)
    assert answer.status_code == 401, (case, answer.status_code, answer.text)
    assert answer.headers["www-authenticate"] == 'Cookie realm="authbench", error="invalid_token"'



@pytest.mark.parametrize("where", ["session_target", "uvicorn_target"])
@pytest.mark.parametrize("size", OVERSIZE)
def test_huge_session_cookie_is_refused(
    request: pytest.FixtureRequest, where: str, size: int
) -> None:
    live: Live = request.getfixturevalue(where)
    with live.client() as client:
        real = login(client).cookies["sid"]
        assert_refused(_me_with_sid(client, "a" * size), is_bearer=False)
        assert_refused(_me_with_sid(client, real + "a" * size), is_bearer=False)
        padded = client.get("/api/me", headers={"Cookie": f"junk={'x' * size}; sid=zzz"})
        assert_refused(padded, is_bearer=False)


def test_session_used_after_logout_is_401(session_target: Live) -> None:
    with session_target.client() as client:
        answer = login(client)
        sid, csrf = answer.cookies["sid"], answer.json()["csrf_token"]
        headers = {"Cookie": f"sid={sid}", "X-CSRF-Token": csrf}
        assert client.get("/api/me", headers=headers).status_code == 200
        assert client.post("/auth/logout", headers=headers).status_code == 200
        assert client.get("/api/me", headers=headers).status_code == 401
        assert client.post("/api/items", json={"a": 1}, headers=headers).status_code == 401
        assert client.post("/auth/logout", headers=headers).status_code == 401


def test_bearer_token_means_nothing_to_a_session_target(session_target: Live) -> None:
    forged: dict[str, Any] = {"alg": "none"}
    token = f"{b64url(json.dumps(forged).encode())}.{b64url(b'{}')}."
    with session_target.client() as client:
        answer = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401


def test_no_credential_gets_a_challenge_without_an_error_code(bearer: Live) -> None:
    """RFC 6750 3.1: no error= when the request carried no credential at all."""
    with bearer.client() as client:
        answer = client.get("/api/me")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="authbench"'


def test_no_session_cookie_gets_a_challenge_without_an_error_code(
    session_target: Live,
) -> None:
    with session_target.client() as client:
        answer = client.get("/api/me")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Cookie realm="authbench"'
