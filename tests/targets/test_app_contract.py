"""The endpoint contract for every mode on every store.

The app runs in this process (tests.support.InProcessTarget): the contract is the
app's, and the HTTP server adds nothing to it. The stores are the real ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support import FAST_KDF, InProcessTarget, drop_namespace, store_env


@dataclass(frozen=True)
class Variant:
    mode: str
    store: str
    revocation: str = "none"
    lib: str = "pyjwt"

    @property
    def id(self) -> str:
        suffix = f"-{self.revocation}" if self.revocation != "none" else ""
        library = "-joserfc" if self.lib != "pyjwt" else ""
        return f"{self.mode}-{self.store}{suffix}{library}"

    @property
    def can_revoke_access(self) -> bool:
        return self.mode == "session" or self.revocation != "none"


STORES = ("memory", "redis", "postgres")
VARIANTS = [
    Variant("none", "memory"),
    *(Variant("session", s) for s in STORES),
    *(Variant("jwt", s, "blocklist") for s in STORES),
    Variant("jwt", "memory"),
    *(Variant("hybrid", s) for s in STORES),
    Variant("hybrid", "redis", "blocklist"),
    Variant("jwt", "redis", "pubsub"),
    Variant("hybrid", "redis", "pubsub"),
    Variant("jwt", "redis", "blocklist", lib="joserfc"),
    Variant("hybrid", "memory", lib="joserfc"),
]


@dataclass
class Live:
    variant: Variant
    target: InProcessTarget

    def client(self) -> httpx.Client:
        return self.target.client()


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: v.id)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    variant: Variant = request.param
    env = {
        **FAST_KDF,
        "AUTH_MODE": variant.mode,
        "JWT_REVOCATION": variant.revocation,
        "JWT_LIB": variant.lib,
        "SEED_USERS": "50",
        **store_env(variant.store, request),
    }
    try:
        with InProcessTarget(env) as target:
            yield Live(variant, target)
    finally:
        drop_namespace(env)


class Session:
    """A logged-in client: carries the credential the way its mode wants."""

    def __init__(self, client: httpx.Client, mode: str, user: str = "user3") -> None:
        self.client = client
        self.mode = mode
        answer = client.post("/auth/login", json={"username": user, "password": f"pw-{user}"})
        assert answer.status_code == 200, answer.text
        self.body = answer.json()
        self.headers: dict[str, str] = {}
        if "access_token" in self.body:
            self.headers["Authorization"] = f"Bearer {self.body['access_token']}"
        self.csrf = self.body.get("csrf_token")
        self.cookies = dict(answer.cookies)
        client.cookies.clear()  # each Session sends its own cookies, explicitly
        if self.cookies:
            self.headers["Cookie"] = cookie_header(self.cookies)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers)

    def _with_csrf(self, csrf: bool) -> dict[str, str]:
        headers = dict(self.headers)
        if csrf and self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        return headers

    def post(self, path: str, json: object = None, csrf: bool = True) -> httpx.Response:
        return self.client.post(path, json=json, headers=self._with_csrf(csrf))

    def delete(self, path: str, csrf: bool = True) -> httpx.Response:
        return self.client.delete(path, headers=self._with_csrf(csrf))


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def test_health_reports_mode_and_store(live: Live) -> None:
    with live.client() as client:
        body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["auth_mode"] == live.variant.mode
    assert body["store"] == live.variant.store


def test_noauth_and_me_return_the_same_body(live: Live) -> None:
    with live.client() as client:
        floor = client.get("/noauth")
        session = Session(client, live.variant.mode, user="user0")
        me = session.get("/api/me")
    assert floor.status_code == me.status_code == 200
    assert floor.content == me.content
    assert me.json() == {"user": "user0", "name": "User 0", "roles": ["reader", "writer"]}


def test_me_carries_server_timing(live: Live) -> None:
    with live.client() as client:
        me = Session(client, live.variant.mode).get("/api/me")
    header = me.headers["server-timing"]
    match = re.fullmatch(r"auth;dur=(\d+\.\d{3}), auth-cpu;dur=(\d+\.\d{3}), "
                         r"store;dur=(\d+\.\d{3})", header)
    assert match is not None, header
    wall, cpu, store = (float(group) for group in match.groups())
    assert 0.0 <= wall < 1000.0
    # The step's own CPU and its store calls both fit inside its wall time.
    assert cpu <= wall and store <= wall, header
    uses_store = live.variant.store != "memory" and (
        live.variant.mode == "session" or live.variant.revocation == "blocklist")
    if uses_store:
        assert store > 0.0, header  # the lookup's round trip is visible
    else:
        assert store == 0.0, header  # memory, pub/sub and plain JWT await no store


def test_no_credential_is_401(live: Live) -> None:
    if live.variant.mode == "none":
        pytest.skip("mode none needs no credential")
    with live.client() as client:
        for method, path in [("GET", "/api/me"), ("POST", "/api/items"),
                             ("POST", "/auth/logout"), ("GET", "/auth/sessions"),
                             ("DELETE", "/auth/sessions")]:
            answer = client.request(method, path, json={})
            assert answer.status_code == 401, (method, path, answer.text)


def test_wrong_password_and_unknown_user_look_the_same(live: Live) -> None:
    with live.client() as client:
        wrong = client.post("/auth/login", json={"username": "user1", "password": "nope"})
        unknown = client.post("/auth/login", json={"username": "mallory", "password": "x"})
        past_seed = client.post("/auth/login", json={"username": "user50", "password": "pw-user50"})
    assert wrong.status_code == unknown.status_code == past_seed.status_code == 401
    assert wrong.content == unknown.content == past_seed.content


def test_login_gives_the_mode_s_credential(live: Live) -> None:
    mode = live.variant.mode
    with live.client() as client:
        answer = client.post("/auth/login", json={"username": "user4", "password": "pw-user4"})
    assert answer.status_code == 200
    body = answer.json()
    cookies = answer.headers.get_list("set-cookie")
    if mode == "session":
        assert len(body["csrf_token"]) >= 43
        (cookie,) = cookies
        assert re.match(r"sid=[A-Za-z0-9_-]{43};", cookie), cookie
        lowered = cookie.lower()
        assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
        assert "domain" not in lowered and "secure" not in lowered  # plain HTTP here
    elif mode in ("jwt", "hybrid"):
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        assert body["access_token"].count(".") == 2
    if mode == "hybrid":
        (cookie,) = cookies
        lowered = cookie.lower()
        assert lowered.startswith("rt=") and "httponly" in lowered
        assert "samesite=strict" in lowered and "path=/auth" in lowered
    if mode == "jwt":
        assert cookies == []


def test_each_login_gets_a_new_session_id(live: Live) -> None:
    if live.variant.mode != "session":
        pytest.skip("session IDs exist in session mode")
    with live.client() as client:
        first = Session(client, "session")
        client.cookies.set("sid", first.cookies["sid"])  # re-sent at the next login
        second = Session(client, "session")
    assert first.cookies["sid"] != second.cookies["sid"]
    with live.client() as client:
        old = client.get("/api/me", headers={"Cookie": f"sid={first.cookies['sid']}"})
        new = client.get("/api/me", headers={"Cookie": f"sid={second.cookies['sid']}"})
    assert old.status_code == 401  # the session presented at login was replaced
    assert new.status_code == 200


def test_write_needs_csrf_where_the_credential_is_a_cookie(live: Live) -> None:
    mode = live.variant.mode
    with live.client() as client:
        session = Session(client, mode)
        with_token = session.post("/api/items", json={"name": "a"})
        without = session.post("/api/items", json={"name": "a"}, csrf=False)
        wrong = client.post(
            "/api/items", json={"name": "a"}, headers={**session.headers, "X-CSRF-Token": "x" * 43}
        )
    assert with_token.status_code == 201
    assert with_token.json()["owner"] == ("user0" if mode == "none" else "user3")
    if mode == "session":
        assert without.status_code == wrong.status_code == 403
    else:
        assert without.status_code == 201


def test_logout_revokes_where_the_mode_can(live: Live) -> None:
    variant = live.variant
    if variant.mode == "none":
        pytest.skip("nothing to revoke")
    with live.client() as client:
        session = Session(client, variant.mode)
        assert session.get("/api/me").status_code == 200
        out = session.post("/auth/logout")
        assert out.status_code == 200
        after = session.get("/api/me")
    expected = 401 if variant.can_revoke_access else 200
    assert after.status_code == expected, after.text
    assert out.json()["revoked"] is variant.can_revoke_access
    if variant.mode == "session":
        cleared = out.headers["set-cookie"].lower()
        assert cleared.startswith('sid="";') and "max-age=0" in cleared


def test_sessions_list_and_logout_everywhere(live: Live) -> None:
    variant = live.variant
    if variant.mode == "none":
        pytest.skip("no sessions")
    user = "user7"
    with live.client() as a_client, live.client() as b_client:
        a = Session(a_client, variant.mode, user)
        b = Session(b_client, variant.mode, user)
        listing = a.get("/auth/sessions").json()
        if variant.mode == "jwt":
            assert listing["is_tracked"] is False
            assert len(listing["sessions"]) == 1
        else:
            assert listing["is_tracked"] is True
            assert len(listing["sessions"]) >= 2
            assert sum(s["current"] for s in listing["sessions"]) == 1
        assert b.delete("/auth/sessions").status_code == 200
        a_after, b_after = a.get("/api/me"), b.get("/api/me")
        if variant.can_revoke_access:
            assert a_after.status_code == b_after.status_code == 401
        else:
            assert a_after.status_code == b_after.status_code == 200
        # A login after "log out everywhere" works at once.
        c = Session(a_client, variant.mode, user)
        assert c.get("/api/me").status_code == 200


def test_refresh_rotates_and_replay_revokes_the_family(live: Live) -> None:
    if live.variant.mode != "hybrid":
        with live.client() as client:
            assert client.post("/auth/refresh").status_code == 404
        return
    with live.client() as client:
        session = Session(client, "hybrid")
        first_cookie = session.cookies["rt"]
        no_csrf = session.post("/auth/refresh", csrf=False)
        assert no_csrf.status_code == 403
        rotated = session.post("/auth/refresh")
        assert rotated.status_code == 200, rotated.text
        second_cookie = rotated.cookies["rt"]
        client.cookies.clear()
        assert second_cookie != first_cookie
        new_access = rotated.json()["access_token"]
        me = client.get("/api/me", headers={"Authorization": f"Bearer {new_access}"})
        assert me.status_code == 200
        # The rotated (first) token comes back: a replay, so the whole family dies...
        csrf = session.csrf
        replay = client.post("/auth/refresh",
                             headers={"Cookie": f"rt={first_cookie}", "X-CSRF-Token": csrf})
        assert replay.status_code == 401
        # ...including the newest refresh token.
        after = client.post("/auth/refresh",
                            headers={"Cookie": f"rt={second_cookie}", "X-CSRF-Token": csrf})
        assert after.status_code == 401


def test_logout_ends_the_refresh_family(live: Live) -> None:
    if live.variant.mode != "hybrid":
        pytest.skip("hybrid only")
    with live.client() as client:
        session = Session(client, "hybrid")
        assert session.post("/auth/logout").status_code == 200
        again = client.post("/auth/refresh", headers={
            "Cookie": f"rt={session.cookies['rt']}", "X-CSRF-Token": session.csrf})
    assert again.status_code == 401


def test_jwks_is_empty_for_hmac_and_absent_elsewhere(live: Live) -> None:
    with live.client() as client:
        answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 404  # these targets run HS256 or no JWT at all
