"""A store that loses its revocation state must never make a logged-out token valid again.

Real uvicorn targets, real losses: a redis-server of the test's own restarted empty,
FLUSHALL, evicting under maxmemory with allkeys-lru (started with the override), a
TRUNCATE in a PostgreSQL schema of the test's own, and a memory store whose process
restarts. For jwt + blocklist, jwt + pubsub and hybrid + blocklist the logged-out token
ends in 401 on every node (a pub/sub node started after the loss included), tokens from
before the loss go with it, and a login after the loss works.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from authbench.infra.launcher import TargetProcess
from targets.keys import generate_key, write_key
from targets.stores.epochs import HEARTBEAT
from tests.conftest import StartTarget
from tests.support import unique_namespace
from tests.targets.redis_server import PrivateRedis, StartRedis

pytestmark = pytest.mark.slow  # real targets and stores that lose their state: seconds per case

STORE_TIMEOUT = 0.5
DETECTION = 2 * (HEARTBEAT + STORE_TIMEOUT) + 1.0  # seconds: the bound, with slack
EVICTING = ("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")


@dataclass(frozen=True)
class Mode:
    name: str
    env: dict[str, str]


MODES = {
    "jwt-blocklist": Mode("jwt", {"AUTH_MODE": "jwt", "JWT_REVOCATION": "blocklist"}),
    "jwt-pubsub": Mode("jwt", {"AUTH_MODE": "jwt", "JWT_REVOCATION": "pubsub"}),
    "hybrid-blocklist": Mode("hybrid", {"AUTH_MODE": "hybrid", "JWT_REVOCATION": "blocklist"}),
}
LOSSES = ("redis-restart", "flushall", "eviction", "postgres-truncate", "memory-restart")
REDIS_LOSSES = ("redis-restart", "flushall", "eviction")
CASES = [(mode, loss) for mode in MODES for loss in LOSSES
         if mode != "jwt-pubsub" or loss in REDIS_LOSSES]


@dataclass
class Credential:
    """A login: the access token's header, and hybrid's CSRF token and refresh cookie."""

    headers: dict[str, str]
    csrf: str | None
    refresh_cookie: str | None

    @property
    def jti(self) -> str:
        payload = self.headers["Authorization"].split(".")[1]
        return str(json.loads(base64.urlsafe_b64decode(payload + "=="))["jti"])


def login(target: TargetProcess, user: str) -> Credential:
    answer = httpx.post(f"{target.url}/auth/login",
                        json={"username": user, "password": f"pw-{user}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return Credential({"Authorization": f"Bearer {body['access_token']}"},
                      body.get("csrf_token"), answer.cookies.get("rt"))


def me(target: TargetProcess, credential: Credential) -> int:
    return httpx.get(f"{target.url}/api/me", headers=credential.headers).status_code


def refresh(target: TargetProcess, credential: Credential) -> int:
    assert credential.refresh_cookie is not None and credential.csrf is not None
    return httpx.post(f"{target.url}/auth/refresh", headers={
        "Cookie": f"rt={credential.refresh_cookie}", "X-CSRF-Token": credential.csrf,
    }).status_code


def health(target: TargetProcess) -> dict[str, object]:
    answer = httpx.get(f"{target.url}/health")
    return answer.json() if answer.status_code == 200 else {}  # type: ignore[no-any-return]


def statuses_until(call: Callable[[], int], wanted: int, what: str) -> list[int]:
    """Every status `call` gives until `wanted` (bounded by DETECTION); fail if never."""
    seen: list[int] = []
    deadline = time.monotonic() + DETECTION
    while True:
        seen.append(call())
        if seen[-1] == wanted:
            return seen
        if time.monotonic() > deadline or len(seen) > 400:
            raise AssertionError(f"{what}: never {wanted} within {DETECTION} s: {seen[-20:]}")
        time.sleep(0.02)


def wait_for_loss(target: TargetProcess, since: float) -> dict[str, object]:
    """The node's revocation_state once /health shows a loss found after `since`."""
    deadline = time.monotonic() + DETECTION
    while time.monotonic() < deadline:
        state = health(target).get("revocation_state")
        if isinstance(state, dict) and (state.get("lost_at") or 0) >= since:
            return state
        time.sleep(0.02)
    raise AssertionError(f"no loss on /health of {target.url}: {health(target)}")


def settled(target: TargetProcess) -> None:
    """Wait (bounded) until a heartbeat passes without a new loss."""
    losses = None
    for _ in range(int(DETECTION / HEARTBEAT) + 2):
        state = health(target).get("revocation_state")
        now = state.get("losses") if isinstance(state, dict) else None
        if now is not None and now == losses:
            return
        losses = now
        time.sleep(HEARTBEAT * 1.2)
    raise AssertionError(f"{target.url} keeps finding losses")


@dataclass
class Rig:
    """One case: its store, its environment, and the nodes that serve it."""

    loss: str
    env: dict[str, str]
    start_target: StartTarget
    redis: PrivateRedis | None = None
    nodes: list[TargetProcess] = field(default_factory=list)

    def start_node(self) -> TargetProcess:
        self.nodes.append(self.start_target(**self.env))
        return self.nodes[-1]

    def evict(self, jti: str) -> None:
        """Fill Redis (in another db) until the token's blocklist entry is evicted."""
        assert self.redis is not None
        key = f"{self.env['STORE_NAMESPACE']}:bl:{jti}"
        with self.redis.client() as ours, self.redis.client(db=1) as junk:
            assert ours.exists(key)
            used = int(junk.info("memory")["used_memory"])
            junk.config_set("maxmemory", used + 512 * 1024)
            value = b"x" * 4096
            for batch in range(200):  # bounded: at most 80 MB written
                pipe = junk.pipeline(transaction=False)
                for index in range(100):
                    pipe.set(f"junk:{batch}:{index}", value)
                pipe.execute()
                if not ours.exists(key):
                    break
            assert not ours.exists(key), "the blocklist entry was never evicted"
            # Room again, so the new marker and later writes evict nothing more.
            junk.flushdb()
            junk.config_set("maxmemory", 64 << 20)

    def inflict(self, revoked: Credential, postgres_url: str) -> None:
        if self.loss == "redis-restart":
            assert self.redis is not None
            self.redis.restart()
        elif self.loss == "flushall":
            assert self.redis is not None
            with self.redis.client() as client:
                client.flushall()
        elif self.loss == "eviction":
            self.evict(revoked.jti)
        elif self.loss == "postgres-truncate":
            asyncio.run(truncate(postgres_url, self.env["STORE_NAMESPACE"]))
        else:  # memory-restart: the same node, a new process
            self.nodes.pop().stop()
            self.start_node()


async def truncate(postgres_url: str, namespace: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"TRUNCATE {namespace}.blocklist")
    finally:
        await conn.close()


@pytest.fixture
def rig(request: pytest.FixtureRequest, start_redis: StartRedis, start_target: StartTarget,
        tmp_path: Path) -> Iterator[Callable[[str, str], Rig]]:
    def make(mode: str, loss: str) -> Rig:
        keys = tmp_path / "keys"  # one key for every node and restart: tokens stay valid
        write_key(keys, "HS256", generate_key("HS256"))
        env = {**MODES[mode].env, "JWT_KEYS_DIR": str(keys), "SEED_USERS": "10",
               "STORE_TIMEOUT": str(STORE_TIMEOUT), "STORE_NAMESPACE": unique_namespace()}
        made = Rig(loss, env, start_target)
        if loss in REDIS_LOSSES:
            made.redis = start_redis(*(EVICTING if loss == "eviction" else ()))
            env.update(STORE="redis", STORE_URL=made.redis.url)
            if loss == "eviction":
                env["STORE_ALLOW_EVICTION"] = "1"
        elif loss == "postgres-truncate":
            env.update(STORE="postgres", STORE_URL=request.getfixturevalue("postgres_url"))
        else:
            env["STORE"] = "memory"
        return made

    yield make


def is_caught_at_once(mode: str, loss: str) -> bool:
    """True where not even one request may pass the revoked token after the loss."""
    if loss == "memory-restart":
        return True  # a new process holds tokens to its start at once
    # A Redis blocklist reads the marker with every check; eviction may spare the marker.
    return mode != "jwt-pubsub" and loss in ("redis-restart", "flushall")


@pytest.mark.parametrize(("mode", "loss"), CASES, ids=[f"{m}-{x}" for m, x in CASES])
def test_a_logged_out_token_stays_revoked_when_the_store_loses_it(
    rig: Callable[[str, str], Rig], mode: str, loss: str, request: pytest.FixtureRequest
) -> None:
    case = rig(mode, loss)
    first = case.start_node()
    revoked, kept = login(first, "user1"), login(first, "user2")
    out = httpx.post(f"{first.url}/auth/logout", headers=revoked.headers)
    assert out.status_code == 200 and out.json()["revoked"] is True
    assert me(first, revoked) == 401 and me(first, kept) == 200
    lost = time.time()
    postgres_url = request.getfixturevalue("postgres_url") if loss == "postgres-truncate" else ""

    case.inflict(revoked, postgres_url)
    if mode == "jwt-pubsub":
        # A running node still holds the revocation in memory; a node started after the
        # loss loads the emptied list: the cutoff the first node wrote must reach it.
        wait_for_loss(case.nodes[0], lost)
        case.start_node()

    for node in case.nodes:
        seen = statuses_until(lambda node=node: me(node, revoked), 401,  # type: ignore[misc]
                              f"{node.url}: the logged-out token")
        assert set(seen) <= {200, 401, 503}, seen
        if is_caught_at_once(mode, loss) or node is not case.nodes[0]:
            assert 200 not in seen, f"the revoked token passed after the loss: {seen}"
        # A token from before the loss may have been revoked and lost: it goes too.
        statuses_until(lambda node=node: me(node, kept), 401,  # type: ignore[misc]
                       f"{node.url}: a token from before the loss")
        if node is case.nodes[0]:  # the node that ran through the loss found it
            state = wait_for_loss(node, lost)
            assert state["epoch"] and state["loss_reason"]
        else:  # a later node found the marker intact, and the cutoff in it
            state = health(node)["revocation_state"]  # type: ignore[assignment]
        assert isinstance(state["global_cutoff"], float) and state["global_cutoff"] >= lost
        if MODES[mode].name == "hybrid":
            # The refresh family is gone with the store, or from before the cutoff.
            assert refresh(node, kept) == 401
    assert "revocation state lost" in case.nodes[0].log_path.read_text()

    # Once the loss is known, logging in works again, on every node. (An evicting Redis
    # may have evicted more while it was being filled: let those be found first.)
    if loss == "eviction":
        for node in case.nodes:
            settled(node)
    fresh = login(case.nodes[-1], "user3")
    for node in case.nodes:
        assert me(node, fresh) == 200, node.url
    if MODES[mode].name == "hybrid":
        assert refresh(case.nodes[-1], fresh) == 200
