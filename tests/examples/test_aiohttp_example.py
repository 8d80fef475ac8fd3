"""The aiohttp example (examples/aiohttp): the real server, one process per auth variant,
driven over HTTP; and its settings checked in process."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest

from authbench.infra.ports import LOOPBACK, free_port

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "aiohttp"
READY_TIMEOUT_S = 20.0
SECRET = secrets.token_urlsafe(48)
ISSUER, AUDIENCE = "bookmarks-example", "bookmarks-api"
A_BOOKMARK = {"url": "https://example.org/read-later", "title": "Read later"}


@dataclass
class Server:
    """A running `python -m bookmarks`, and how to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    auth: str
    log: Path

    def client(self) -> httpx.Client:
        """A client that keeps no cookies: tests send every credential by hand."""
        jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        return httpx.Client(base_url=self.url, timeout=5.0, cookies=jar)

    def stop(self) -> None:
        """SIGTERM (aiohttp shuts down gracefully), and SIGKILL if it does not go."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(tmp_dir: Path, auth: str) -> Server:
    """`python -m bookmarks` from examples/aiohttp on a free port; poll /healthz until ready."""
    port = free_port()
    log = tmp_dir / "server.log"
    env = {**os.environ, "BOOKMARKS_AUTH": auth, "BOOKMARKS_USERS": "50",
           "BOOKMARKS_JWT_SECRET": SECRET}
    command = [sys.executable, "-m", "bookmarks", "--host", LOOPBACK, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=EXAMPLE_DIR, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = Server(process, f"http://{LOOPBACK}:{port}", auth, log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=server.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.get("/healthz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.02)  # a poll interval: readiness is what ends the wait
    server.stop()
    pytest.fail(f"the example did not answer /healthz in {READY_TIMEOUT_S} s:\n{log.read_text()}")


def _serve(auth: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp(f"bookmarks-{auth}"), auth)
    yield server
    server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example with BOOKMARKS_AUTH=session, shared by the module's tests."""
    yield from _serve("session", tmp_path_factory)


@pytest.fixture(scope="module")
def jwt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example with BOOKMARKS_AUTH=jwt, shared by the module's tests."""
    yield from _serve("jwt", tmp_path_factory)


@pytest.fixture(params=["session", "jwt"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each variant in turn."""
    started: Server = request.getfixturevalue(f"{request.param}_server")
    return started


@dataclass
class Login:
    """What a login handed out: the headers that present it, the CSRF and refresh tokens."""

    headers: dict[str, str]
    csrf: str | None = None
    refresh_token: str | None = None

    def write_headers(self) -> dict[str, str]:
        """The credential, plus X-CSRF-Token where the variant has one."""
        return {**self.headers, **({"X-CSRF-Token": self.csrf} if self.csrf else {})}


def credential_of(server: Server, answer: httpx.Response) -> Login:
    """The credential in a successful login's answer, its shape checked for the variant."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    if server.auth == "jwt":
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert "set-cookie" not in answer.headers
        return Login({"Authorization": f"Bearer {body['access_token']}"},
                     refresh_token=body["refresh_token"])
    assert set(body) == {"csrf"}
    cookie = answer.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie
    sid = answer.cookies["bm_session"]
    assert len(sid) == 43  # token_urlsafe(32): 256 bits
    return Login({"Cookie": f"bm_session={sid}"}, csrf=body["csrf"])


def login(server: Server, client: httpx.Client, username: str) -> Login:
    """Log username in with its seeded password (JSON), and return the credential."""
    answer = client.post("/auth/login", json={"username": username,
                                              "password": f"pass-{username}"})
    return credential_of(server, answer)


def test_no_credential_is_401_with_a_challenge(server: Server) -> None:
    scheme = "Bearer" if server.auth == "jwt" else "Cookie"
    with server.client() as client:
        for answer in (client.get("/bookmarks"), client.post("/bookmarks", json=A_BOOKMARK),
                       client.post("/auth/logout", json={})):
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"].startswith(scheme)


def test_login_by_form_and_by_json_then_the_hot_read(server: Server) -> None:
    with server.client() as client:
        by_form = credential_of(server, client.post(
            "/auth/login", data={"username": "user1", "password": "pass-user1"}))
        by_json = credential_of(server, client.post(
            "/auth/login", json={"username": "user1", "password": "pass-user1"}))
        assert by_form.headers != by_json.headers  # a new credential at every login
        for credential in (by_form, by_json):
            answer = client.get("/bookmarks", headers=credential.headers)
            assert answer.status_code == 200
            assert answer.json()["user"] == "user1"
            assert len(answer.json()["bookmarks"]) == 10


def test_public_stats_needs_no_credential_and_does_the_same_work(server: Server) -> None:
    with server.client() as client:
        credential = login(server, client, "user2")
        private = client.get("/bookmarks", headers=credential.headers).json()
        public = client.get("/public/stats")
        assert public.status_code == 200
        assert public.json()["user"] == "demo"
        assert len(public.json()["bookmarks"]) == len(private["bookmarks"]) == 10
        assert client.get("/healthz").json() == {"status": "ok", "auth": server.auth}


def test_a_write_needs_csrf_with_sessions_and_works_with_it(server: Server) -> None:
    with server.client() as client:
        credential = login(server, client, "user3")
        if server.auth == "session":
            for csrf in (None, "wrong", secrets.token_urlsafe(32)):
                headers = {**credential.headers, **({"X-CSRF-Token": csrf} if csrf else {})}
                assert client.post("/bookmarks", json=A_BOOKMARK,
                                   headers=headers).status_code == 403
                assert client.post("/auth/logout", headers=headers).status_code == 403
        answer = client.post("/bookmarks", json=A_BOOKMARK, headers=credential.write_headers())
        assert answer.status_code == 201
        assert answer.json()["url"] == A_BOOKMARK["url"]
        newest = client.get("/bookmarks", headers=credential.headers).json()["bookmarks"][0]
        assert newest == answer.json()


@pytest.mark.parametrize("body", [
    {"url": "javascript:alert(1)", "title": "x"}, {"url": "https://", "title": "x"},
    {"url": "https://example.org", "title": ""}, {"url": "https://example.org"},
    {"url": "https://[::1", "title": "x"}, {"url": 7, "title": "x"}, ["https://example.org"],
])
def test_a_bad_bookmark_is_400(server: Server, body: object) -> None:
    with server.client() as client:
        credential = login(server, client, "user4")
        answer = client.post("/bookmarks", json=body, headers=credential.write_headers())
        assert answer.status_code == 400


def test_a_wrong_login_is_a_generic_401(server: Server) -> None:
    with server.client() as client:
        wrong = client.post("/auth/login", json={"username": "user5", "password": "pass-user6"})
        unknown = client.post("/auth/login", json={"username": "user50", "password": "x"})
        surrogate = client.post("/auth/login", content=b'{"username": "user5", '
                                b'"password": "\\ud800"}',
                                headers={"Content-Type": "application/json"})
        assert wrong.status_code == unknown.status_code == surrogate.status_code == 401
        assert wrong.json() == unknown.json() == {"detail": "invalid username or password"}
        assert "set-cookie" not in wrong.headers


@pytest.mark.parametrize(("content", "content_type"), [
    (b"{", "application/json"),
    (b"[]", "application/json"),
    (b'{"username": "user1"}', "application/json"),
    (b'{"username": "user1", "password": 1}', "application/json"),
    (b"[" * 10_000, "application/json"),
    (b"\xff\xfe{}", "application/json"),
    (b"username=user1", "application/x-www-form-urlencoded"),
    (b"username=user1&password=\xff", "application/x-www-form-urlencoded"),
    (b"username=user1&password=pass-user1", "text/plain"),
])
def test_a_malformed_login_is_400(server: Server, content: bytes, content_type: str) -> None:
    with server.client() as client:
        answer = client.post("/auth/login", content=content,
                             headers={"Content-Type": content_type})
        assert answer.status_code == 400


def test_an_oversized_body_is_413(server: Server) -> None:
    big = {"username": "user7", "password": "x" * 17_000}
    with server.client() as client:
        assert client.post("/auth/login", json=big).status_code == 413
        credential = login(server, client, "user7")
        answer = client.post("/bookmarks", json={**A_BOOKMARK, "title": "t" * 17_000},
                             headers=credential.write_headers())
        assert answer.status_code == 413


def test_a_large_content_length_is_413_before_the_body(server: Server) -> None:
    head = (b"POST /auth/login HTTP/1.1\r\nHost: bookmarks\r\nContent-Type: application/json"
            b"\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n")
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5.0) as sock:
        sock.sendall(head)  # and no body: the answer must not wait for one
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_session_bad_ids_are_401(session_server: Server) -> None:
    with session_server.client() as client:
        sid = login(session_server, client, "user8").headers["Cookie"].split("=", 1)[1]
        flipped = sid[:-1] + ("A" if sid[-1] != "A" else "B")
        for value in (secrets.token_urlsafe(32), flipped, "short", "a" * 5000):
            answer = client.get("/bookmarks", headers={"Cookie": f"bm_session={value}"})
            assert answer.status_code == 401, value


def test_session_logout_revokes_at_once(session_server: Server) -> None:
    with session_server.client() as client:
        credential = login(session_server, client, "user9")
        other = login(session_server, client, "user9")  # another browser of the same user
        out = client.post("/auth/logout", headers=credential.write_headers())
        assert out.status_code == 200
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert client.get("/bookmarks", headers=credential.headers).status_code == 401
        assert client.post("/bookmarks", json=A_BOOKMARK,
                           headers=credential.write_headers()).status_code == 401
        assert client.get("/bookmarks", headers=other.headers).status_code == 200


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "user1", "iat": now, "exp": now + 60, "jti": secrets.token_urlsafe(8),
              "iss": ISSUER, "aud": AUDIENCE}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(claims: dict[str, Any] | None = None, *, key: str | bytes = SECRET,
            algorithm: str = "HS256", typ: str | None = "at+jwt") -> str:
    return jwt.encode(claims or _claims(), key, algorithm=algorithm,
                      headers={"typ": typ} if typ else None)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none(alg: str) -> str:
    return f"{_b64({'alg': alg, 'typ': 'at+jwt'})}.{_b64(_claims())}."


def _edited_payload() -> str:
    header, _, signature = _signed().split(".")
    return f"{header}.{_b64(_claims(sub='user2'))}.{signature}"


def _flipped_signature() -> str:
    token = _signed()
    return token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg none": lambda: _alg_none("none"),
    "alg None": lambda: _alg_none("None"),
    "alg NONE": lambda: _alg_none("NONE"),
    "edited payload": _edited_payload,
    "flipped signature": _flipped_signature,
    "truncated signature": lambda: _signed()[:-6],
    "two segments": lambda: _signed().rpartition(".")[0],
    "other secret": lambda: _signed(key=secrets.token_bytes(32)),
    "HS512": lambda: _signed(algorithm="HS512"),
    "expired": lambda: _signed(_claims(exp=int(time.time()) - 60)),
    "not yet valid": lambda: _signed(_claims(nbf=int(time.time()) + 600)),
    "wrong aud": lambda: _signed(_claims(aud="other")),
    "wrong iss": lambda: _signed(_claims(iss="other")),
    "no exp": lambda: _signed(_claims(exp=None)),
    "no jti": lambda: _signed(_claims(jti=None)),
    "no typ": lambda: _signed(typ=None),
    "unknown crit": lambda: jwt.encode(_claims(), SECRET, "HS256",
                                       headers={"typ": "at+jwt", "crit": ["exp-ext"]}),
    "non-JSON header": lambda: "bm90IGpzb24." + _signed().split(".", 1)[1],
    "oversized": lambda: "a" * 5000,
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_a_bad_token_is_401(jwt_server: Server, case: str) -> None:
    with jwt_server.client() as client:
        answer = client.get("/bookmarks",
                            headers={"Authorization": f"Bearer {BAD_TOKENS[case]()}"})
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_a_token_of_non_ascii_bytes_is_401(jwt_server: Server) -> None:
    with jwt_server.client() as client:
        for value in (b"Bearer a\xff\xfe.b.c", b"Bearer \xed\xa0\x80.b.c"):
            answer = client.get("/bookmarks", headers={b"Authorization": value})
            assert answer.status_code == 401, value


def test_a_token_made_here_passes(jwt_server: Server) -> None:
    """The control for the bad tokens: the same recipe, unspoiled, is accepted."""
    with jwt_server.client() as client:
        answer = client.get("/bookmarks", headers={"Authorization": f"Bearer {_signed()}"})
        assert answer.status_code == 200
        assert answer.json()["user"] == "user1"


def refresh(client: httpx.Client, token: str | None) -> httpx.Response:
    """POST /auth/refresh with the token in a JSON body."""
    return client.post("/auth/refresh", json={"refresh_token": token})


def test_jwt_logout_ends_the_refresh_family_but_not_the_access_token(
        jwt_server: Server) -> None:
    with jwt_server.client() as client:
        credential = login(jwt_server, client, "user10")
        assert client.post("/auth/logout", json={}, headers=credential.headers
                           ).status_code == 400  # the refresh token is part of a logout
        out = client.post("/auth/logout", json={"refresh_token": credential.refresh_token},
                          headers=credential.headers)
        assert out.status_code == 200
        # Deliberate: no blocklist, so the access token works until its exp.
        assert client.get("/bookmarks", headers=credential.headers).status_code == 200
        assert refresh(client, credential.refresh_token).status_code == 401


def test_refresh_rotates_and_a_replay_revokes_the_family(jwt_server: Server) -> None:
    with jwt_server.client() as client:
        first = login(jwt_server, client, "user11")
        elsewhere = login(jwt_server, client, "user11")  # another login: another family
        answer = refresh(client, first.refresh_token)
        second = credential_of(jwt_server, answer)
        assert second.refresh_token != first.refresh_token
        assert client.get("/bookmarks", headers=second.headers).json()["user"] == "user11"
        replay = refresh(client, first.refresh_token)  # spent: someone holds a copy
        assert replay.status_code == 401
        assert replay.headers["www-authenticate"].startswith("Bearer")
        assert refresh(client, second.refresh_token).status_code == 401  # family revoked
        assert refresh(client, elsewhere.refresh_token).status_code == 200


@pytest.mark.parametrize("body", [{}, {"refresh_token": 5}, [], {"refresh_token": "x" * 43}])
def test_a_bad_refresh_request_is_400_or_401(jwt_server: Server, body: object) -> None:
    with jwt_server.client() as client:
        answer = client.post("/auth/refresh", json=body)
        assert answer.status_code == (401 if body == {"refresh_token": "x" * 43} else 400)


def test_sessions_have_no_refresh_endpoint(session_server: Server) -> None:
    with session_server.client() as client:
        assert refresh(client, "anything").status_code == 404


# In process: settings, without a server.

@pytest.fixture
def bookmarks_package(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example's `bookmarks` package, imported from examples/aiohttp."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    return importlib.import_module("bookmarks")


@pytest.mark.parametrize(("env", "message"), [
    ({"BOOKMARKS_AUTH": "oauth"}, "BOOKMARKS_AUTH"),
    ({"BOOKMARKS_USERS": "0"}, "BOOKMARKS_USERS"),
    ({"BOOKMARKS_ACCESS_TTL": "5m"}, "BOOKMARKS_ACCESS_TTL"),
    ({"BOOKMARKS_AUTH": "jwt", "BOOKMARKS_JWT_SECRET": "short"}, "BOOKMARKS_JWT_SECRET"),
])
def test_bad_settings_are_refused_by_name(bookmarks_package: ModuleType, env: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(bookmarks_package.ConfigError, match=message):
        bookmarks_package.create_app(env)


def test_a_generated_secret_is_warned_about(bookmarks_package: ModuleType,
                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bookmarks"):
        bookmarks_package.create_app({"BOOKMARKS_AUTH": "jwt", "BOOKMARKS_ACCESS_TTL": "60"})
    assert "BOOKMARKS_JWT_SECRET is not set" in caplog.text
