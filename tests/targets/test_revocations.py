"""JWT_REVOCATION=pubsub across real nodes: a logout on one node reaches the others.

Each test runs two or three uvicorn targets on one Redis namespace with one shared
signing key, as the suite runner's multi-node cells do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from authbench.infra.launcher import TargetProcess
from targets.keys import generate_key, write_key
from targets.revocations import PubSubRevocations
from targets.settings import ConfigError, Settings
from targets.stores import RedisStore, StoreUnavailable
from targets.stores.resp import RedisAddress, RespConnectionError
from tests.conftest import StartTarget
from tests.support import closed_port, unique_namespace

PROPAGATION_LIMIT = 2.0  # seconds; the measured lag is in BENCHMARKS.md (milliseconds)


@pytest.fixture
def pubsub_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys"
    write_key(keys, "HS256", generate_key("HS256"))
    return {"AUTH_MODE": "jwt", "JWT_REVOCATION": "pubsub", "STORE": "redis",
            "STORE_URL": redis_url, "STORE_NAMESPACE": unique_namespace(),
            "JWT_KEYS_DIR": str(keys), "SEED_USERS": "10"}


def bearer(target: TargetProcess, user: str = "user1") -> dict[str, str]:
    answer = httpx.post(f"{target.url}/auth/login",
                        json={"username": user, "password": f"pw-{user}"})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def status(target: TargetProcess, headers: dict[str, str]) -> int:
    return httpx.get(f"{target.url}/api/me", headers=headers).status_code


def wait_for_status(target: TargetProcess, headers: dict[str, str], wanted: int) -> float:
    """Seconds until /api/me answers `wanted` (bounded: fails after PROPAGATION_LIMIT)."""
    started = time.monotonic()
    for _ in range(400):
        if status(target, headers) == wanted:
            return time.monotonic() - started
        if time.monotonic() - started > PROPAGATION_LIMIT:
            break
        time.sleep(0.005)
    raise AssertionError(f"{target.url} never answered {wanted} within {PROPAGATION_LIMIT} s")


def test_pubsub_needs_redis() -> None:
    with pytest.raises(ConfigError, match="STORE=redis"):
        Settings.from_env({"JWT_REVOCATION": "pubsub", "STORE": "memory"})
    with pytest.raises(ConfigError, match="STORE=redis"):
        Settings.from_env({"JWT_REVOCATION": "pubsub", "STORE": "postgres"})
    assert Settings.from_env({"JWT_REVOCATION": "pubsub", "STORE": "redis"}).needs_store


@pytest.mark.slow  # two or three uvicorn nodes
def test_logout_on_one_node_reaches_the_other(
    start_target: StartTarget, pubsub_env: dict[str, str]
) -> None:
    first, second = start_target(**pubsub_env), start_target(**pubsub_env)
    headers = bearer(first)
    assert status(first, headers) == 200 and status(second, headers) == 200
    out = httpx.post(f"{first.url}/auth/logout", headers=headers)
    assert out.json() == {"revoked": True}
    assert status(first, headers) == 401  # the node that logged out knows at once
    lag = wait_for_status(second, headers, 401)
    assert lag < PROPAGATION_LIMIT
    other = bearer(first, "user2")  # only the revoked token is rejected
    assert status(second, other) == 200


@pytest.mark.slow  # two or three uvicorn nodes
def test_logout_everywhere_reaches_every_node(
    start_target: StartTarget, pubsub_env: dict[str, str]
) -> None:
    first, second = start_target(**pubsub_env), start_target(**pubsub_env)
    on_first, on_second = bearer(first), bearer(second)
    assert httpx.request("DELETE", f"{second.url}/auth/sessions",
                         headers=on_second).json() == {"revoked": "all"}
    wait_for_status(first, on_first, 401)
    wait_for_status(second, on_first, 401)
    time.sleep(0.01)  # iat has ms precision: a new login is after the cutoff
    fresh = bearer(first)
    assert status(second, fresh) == 200


@pytest.mark.slow  # two or three uvicorn nodes
def test_a_node_started_later_loads_the_blocklist(
    start_target: StartTarget, pubsub_env: dict[str, str]
) -> None:
    first = start_target(**pubsub_env)
    revoked, cut_user = bearer(first), bearer(first, "user3")
    httpx.post(f"{first.url}/auth/logout", headers=revoked)
    httpx.request("DELETE", f"{first.url}/auth/sessions", headers=cut_user)
    late = start_target(**pubsub_env)
    assert status(late, revoked) == 401
    assert status(late, cut_user) == 401
    assert status(late, bearer(first, "user4")) == 200


# --- in process: two nodes' revocation lists on one real Redis --------------------------

@pytest.fixture
async def two_nodes(redis_url: str) -> AsyncIterator[tuple[PubSubRevocations, PubSubRevocations]]:
    namespace = unique_namespace()
    nodes = []
    for _ in range(2):
        store = RedisStore(redis_url, namespace, timeout=0.5, pool_size=4)
        await store.open()
        node = PubSubRevocations(store, namespace)
        await node.open()
        nodes.append(node)
    yield nodes[0], nodes[1]
    for node in nodes:
        await node.close()
    await nodes[0].store.discard()
    for node in nodes:
        await node.store.close()


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(200):  # 2 s at most
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_failed_revocation_leaves_no_node_half_revoked(
    two_nodes: tuple[PubSubRevocations, PubSubRevocations]
) -> None:
    first, second = two_nodes
    now = time.time()
    working = first.store.client.address
    # The command connections fail (the subscription stays up): nothing may be half done.
    await first.store.client.close()
    first.store.client.address = RedisAddress(port=closed_port())
    with pytest.raises(RespConnectionError):
        await first.block_token("jti-1", now + 60)
    assert not (await first.revocation_state("jti-1", "u", now)).is_blocked  # can retry
    assert await second.store.client.execute("GET", second.store.key("bl", "jti-1")) is None
    first.store.client.address = working
    await first.block_token("jti-1", now + 60)  # the user's retry
    assert (await first.revocation_state("jti-1", "u", now)).is_blocked
    await wait_until(lambda: second.local.state("jti-1", "u", now).is_blocked, "the broadcast")


async def test_cutoffs_travel_and_never_move_back(
    two_nodes: tuple[PubSubRevocations, PubSubRevocations]
) -> None:
    first, second = two_nodes
    now = time.time()
    await first.set_user_cutoff("alice", now, now + 60)
    await second.set_user_cutoff("alice", now - 30, now + 60)  # older, landing last
    await wait_until(lambda: first.heard >= 2 and second.heard >= 2, "both messages")
    for node in (first, second):
        assert (await node.revocation_state("x", "alice", now)).cutoff == now
    stored = await first.store.client.execute("GET", first.store.key("cut", "alice"))
    assert float(stored) == now


async def test_malformed_messages_are_ignored(
    two_nodes: tuple[PubSubRevocations, PubSubRevocations]
) -> None:
    first, second = two_nodes
    for junk in (b"not json", b'["bl"]', b'["cut", "u", "soon", 1e12]', b'["xx", "k", 1, 1]'):
        await first.store.client.execute("PUBLISH", first.channel, junk)
    now = time.time()
    await first.block_token("good", now + 60)
    await wait_until(lambda: second.heard == 1, "the one good message")
    assert second.is_listening and second.local.state("good", "u", now).is_blocked


async def test_a_lost_channel_fails_closed_at_once(
    two_nodes: tuple[PubSubRevocations, PubSubRevocations]
) -> None:
    first, _ = two_nodes
    working = first.store.client.address
    first.store.client.address = RedisAddress(port=closed_port())  # no way back, for now
    assert first._subscription is not None
    first._subscription.close()  # the connection goes: no waiting for a heartbeat
    await wait_until(lambda: not first.is_listening, "the node to notice")
    with pytest.raises(StoreUnavailable):
        await first.revocation_state("x", "u", time.time())
    first.store.client.address = working
    await wait_until(lambda: first.is_listening, "the resubscription")
