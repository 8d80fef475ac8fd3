"""The Flask example (examples/flask): the real app under gunicorn, both auth variants,
memory and Redis; and its JWT checks in process, case by case."""

from __future__ import annotations

import importlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest
import redis

from authbench.infra.ports import LOOPBACK, free_port

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "flask"
READY_TIMEOUT_S = 20.0
SECRET = secrets.token_urlsafe(48)  # 64 bytes: long enough even for the HS512 case


@dataclass
class NotesServer:
    """A running gunicorn serving the example, and how to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    log: Path

    def client(self) -> httpx.Client:
        """A client without a cookie jar worth relying on: tests send credentials by hand."""
        return httpx.Client(base_url=self.url, timeout=5.0)

    def stop(self) -> None:
        """Stop gunicorn (SIGTERM: graceful), and kill it if it does not go."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_notes(tmp_dir: Path, env: dict[str, str], *, expect_ready: bool = True) -> NotesServer:
    """Start the example under gunicorn on a free loopback port; wait for /healthz to answer."""
    port = free_port()
    log = tmp_dir / "gunicorn.log"
    # gunicorn >= 25.1 opens a control socket in $XDG_RUNTIME_DIR (else ~/.gunicorn), one
    # path for every gunicorn of the user: each test server gets a directory of its own.
    full_env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_dir), **env}
    command = [sys.executable, "-m", "gunicorn", "--chdir", str(EXAMPLE_DIR), "-w", "1",
               "-b", f"{LOOPBACK}:{port}", "notes:create_app()"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    server = NotesServer(process, f"http://{LOOPBACK}:{port}", env, log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(base_url=server.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
            try:
                status = client.get("/healthz").status_code
            except httpx.TransportError:
                status = None  # not listening yet
            if status is not None and (status == 200 or not expect_ready):
                return server
            time.sleep(0.05)  # a poll interval: readiness is what ends the wait
    server.stop()
    pytest.fail(f"the example did not answer /healthz in {READY_TIMEOUT_S} s:\n{log.read_text()}")


def drop_keys(redis_url: str, namespace: str) -> None:
    """Remove every key the example left under its namespace."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def namespace_keys(redis_url: str, namespace: str) -> list[str]:
    """The keys under namespace, decoded."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sorted(str(key) for key in client.scan_iter(match=f"{namespace}:*", count=500))
    finally:
        client.close()


VARIANTS = [
    pytest.param(("session", "memory"), id="session-memory"),
    pytest.param(("jwt", "memory"), id="jwt-memory"),
    pytest.param(("session", "redis"), id="session-redis", marks=pytest.mark.redis),
    pytest.param(("jwt", "redis"), id="jwt-redis", marks=pytest.mark.redis),
]


@pytest.fixture(scope="module", params=VARIANTS)
def notes(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotesServer]:
    """The example under gunicorn, one per variant for the module's tests."""
    auth, store = request.param
    env = {"NOTES_AUTH": auth, "NOTES_USERS": "50", "NOTES_JWT_SECRET": SECRET}
    redis_url = None
    if store == "redis":
        redis_url = request.getfixturevalue("redis_url")
        env |= {"NOTES_REDIS_URL": redis_url, "NOTES_NAMESPACE": f"t_{secrets.token_hex(6)}"}
    server = start_notes(tmp_path_factory.mktemp(f"notes-{auth}-{store}"), env)
    yield server
    server.stop()
    if redis_url is not None:
        drop_keys(redis_url, env["NOTES_NAMESPACE"])
    log = server.log.read_text()
    assert "Traceback" not in log, log


def login(client: httpx.Client, username: str, password: str | None = None) -> httpx.Response:
    """POST /login with the user's documented password unless another is given."""
    return client.post("/login", json={"username": username,
                                       "password": password or f"secret-{username}"})


@dataclass
class Credential:
    """What a login handed out, as the headers that present it."""

    headers: dict[str, str]
    csrf: str | None


def credential_of(server: NotesServer, answer: httpx.Response) -> Credential:
    """The credential from a successful login's answer, checked against the variant's shape."""
    assert answer.status_code == 200, answer.text
    body = answer.json()
    if server.env["NOTES_AUTH"] == "jwt":
        assert body["expires_in"] == 900
        assert "set-cookie" not in answer.headers
        return Credential({"Authorization": f"Bearer {body['token']}"}, None)
    cookie = answer.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    sid = answer.cookies["notes_sid"]
    assert len(sid) == 43  # token_urlsafe(32): 256 bits
    return Credential({"Cookie": f"notes_sid={sid}"}, body["csrf"])


def write_headers(credential: Credential) -> dict[str, str]:
    """The headers of an authenticated write: the credential, plus CSRF with sessions."""
    extra = {"X-CSRF-Token": credential.csrf} if credential.csrf else {}
    return {**credential.headers, **extra}


@pytest.mark.slow
def test_login_me_write_logout_then_rejected(notes: NotesServer) -> None:
    with notes.client() as client:
        credential = credential_of(notes, login(client, "alice7"))
        me = client.get("/me", headers=credential.headers)
        assert me.status_code == 200
        assert me.json()["username"] == "alice7"
        assert me.json()["profile"]["email"] == "alice7@example.com"
        note = client.post("/notes", json={"text": "hello"}, headers=write_headers(credential))
        assert note.status_code == 201
        assert note.json()["text"] == "hello"
        if "NOTES_REDIS_URL" in notes.env:  # the state is really in Redis, under the prefix
            keys = namespace_keys(notes.env["NOTES_REDIS_URL"], notes.env["NOTES_NAMESPACE"])
            assert f"{notes.env['NOTES_NAMESPACE']}:notes:alice7" in keys
        out = client.post("/logout", headers=write_headers(credential))
        assert out.status_code == 200
        if notes.env["NOTES_AUTH"] == "session":
            assert 'notes_sid=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers[
                "set-cookie"]
        # The same credential, sent again on purpose: the server must have revoked it.
        assert client.get("/me", headers=credential.headers).status_code == 401
        assert client.post("/notes", json={"text": "again"},
                           headers=write_headers(credential)).status_code == 401


@pytest.mark.slow
def test_a_new_login_is_a_new_credential(notes: NotesServer) -> None:
    with notes.client() as client:
        first = credential_of(notes, login(client, "alice8"))
        second = credential_of(notes, login(client, "alice8"))
        assert first.headers != second.headers
        client.post("/logout", headers=write_headers(first)).raise_for_status()
        assert client.get("/me", headers=second.headers).status_code == 200


@pytest.mark.slow
def test_no_credential_is_401_with_sessions_and_403_with_jwt(notes: NotesServer) -> None:
    expected = 403 if notes.env["NOTES_AUTH"] == "jwt" else 401
    with notes.client() as client:
        assert client.get("/me").status_code == expected
        assert client.post("/notes", json={"text": "x"}).status_code == expected


@pytest.mark.slow
def test_a_bad_credential_is_401(notes: NotesServer) -> None:
    if notes.env["NOTES_AUTH"] == "jwt":
        foreign = jwt.encode({"sub": "alice1", "exp": int(time.time()) + 60},
                             secrets.token_bytes(32), algorithm="HS256")
        bad = [{"Authorization": "Bearer not.a.token"}, {"Authorization": f"Bearer {foreign}"},
               {"Authorization": "Basic YWxpY2UxOnNlY3JldC1hbGljZTE="},
               {"Authorization": "Bearer " + "a" * 5000}]
    else:
        bad = [{"Cookie": f"notes_sid={secrets.token_urlsafe(32)}"},  # never issued
               {"Cookie": "notes_sid=short"}, {"Cookie": "notes_sid=" + "a" * 5000}]
    with notes.client() as client:
        for headers in bad:
            assert client.get("/me", headers=headers).status_code == 401, headers


@pytest.mark.slow
def test_a_session_write_needs_the_csrf_token(notes: NotesServer) -> None:
    with notes.client() as client:
        credential = credential_of(notes, login(client, "alice9"))
        if notes.env["NOTES_AUTH"] == "jwt":  # a Bearer header is never sent by itself: no CSRF
            assert client.post("/notes", json={"text": "x"},
                               headers=credential.headers).status_code == 201
            return
        for csrf in (None, "wrong", secrets.token_urlsafe(32)):
            headers = {**credential.headers, **({"X-CSRF-Token": csrf} if csrf else {})}
            assert client.post("/notes", json={"text": "x"}, headers=headers).status_code == 403
            assert client.post("/logout", headers=headers).status_code == 403
        assert client.get("/me", headers=credential.headers).status_code == 200  # still in


@pytest.mark.slow
def test_a_wrong_login_is_a_generic_401(notes: NotesServer) -> None:
    with notes.client() as client:
        wrong = login(client, "alice3", "secret-alice4")
        unknown = login(client, "alice50")  # NOTES_USERS=50: alice0..alice49
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()
        assert "set-cookie" not in wrong.headers
        form = client.post("/login", data={"username": "alice3", "password": "secret-alice3"})
        assert form.status_code == 200  # a form body works as well as JSON
        assert client.post("/login", content=b"{", headers={
            "Content-Type": "application/json"}).status_code == 400


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["session", "jwt"])
def test_healthz_and_requests_are_503_when_redis_does_not_answer(
        auth: str, tmp_path: Path) -> None:
    env = {"NOTES_AUTH": auth, "NOTES_JWT_SECRET": SECRET,
           "NOTES_REDIS_URL": f"redis://{LOOPBACK}:{free_port()}/0"}  # nothing listens there
    server = start_notes(tmp_path, env, expect_ready=False)
    try:
        with server.client() as client:
            assert client.get("/healthz").status_code == 503
            answer = login(client, "alice1")
            if auth == "jwt":  # a token needs no store to be issued; checking it does
                token = answer.json()["token"]
                checked = client.get("/me", headers={"Authorization": f"Bearer {token}"})
            else:
                assert answer.status_code == 503
                checked = client.get("/me", headers={
                    "Cookie": f"notes_sid={secrets.token_urlsafe(32)}"})
            assert checked.status_code == 503  # fail closed, and not 401
            assert checked.headers["Retry-After"] == "1"
    finally:
        server.stop()


# In process: the JWT checks one by one, through Flask's test client (no gunicorn).

@pytest.fixture
def notes_package(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example's `notes` package, imported from examples/flask."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    return importlib.import_module("notes")


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "alice1", "iat": now, "exp": now + 60, "jti": secrets.token_urlsafe(8),
              "iss": "notes-example", "aud": "notes-api"}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: jwt.encode(_claims(exp=int(time.time()) - 60), SECRET, "HS256"),
    "wrong aud": lambda: jwt.encode(_claims(aud="other"), SECRET, "HS256"),
    "wrong iss": lambda: jwt.encode(_claims(iss="other"), SECRET, "HS256"),
    "no jti": lambda: jwt.encode(_claims(jti=None), SECRET, "HS256"),
    "no exp": lambda: jwt.encode(_claims(exp=None), SECRET, "HS256"),
    "HS512": lambda: jwt.encode(_claims(), SECRET, "HS512"),
    "alg none": lambda: jwt.encode(_claims(), "", "none"),
    "other secret": lambda: jwt.encode(_claims(), secrets.token_bytes(32), "HS256"),
    "edited payload": lambda: _edited(jwt.encode(_claims(), SECRET, "HS256")),
    "two segments": lambda: jwt.encode(_claims(), SECRET, "HS256").rpartition(".")[0],
}


def _edited(token: str) -> str:
    header, _, signature = token.split(".")
    other = jwt.encode(_claims(sub="alice2"), SECRET, "HS256").split(".")[1]
    return f"{header}.{other}.{signature}"


def test_a_good_token_passes_in_process(notes_package: ModuleType) -> None:
    app = notes_package.create_app({"NOTES_AUTH": "jwt", "NOTES_JWT_SECRET": SECRET})
    token = jwt.encode(_claims(), SECRET, "HS256")
    answer = app.test_client().get("/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.get_json()["username"] == "alice1"


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_a_bad_token_is_401_in_process(notes_package: ModuleType, case: str) -> None:
    app = notes_package.create_app({"NOTES_AUTH": "jwt", "NOTES_JWT_SECRET": SECRET})
    answer = app.test_client().get(
        "/me", headers={"Authorization": f"Bearer {BAD_TOKENS[case]()}"})
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("env", "message"), [
    ({"NOTES_AUTH": "oauth"}, "NOTES_AUTH"),
    ({"NOTES_USERS": "0"}, "NOTES_USERS"),
    ({"NOTES_AUTH": "jwt", "NOTES_JWT_SECRET": "short"}, "NOTES_JWT_SECRET"),
])
def test_bad_settings_are_refused_by_name(notes_package: ModuleType, env: dict[str, str],
                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        notes_package.create_app(env)
