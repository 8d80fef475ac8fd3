"""A target refuses a Redis that may evict its keys, unless STORE_ALLOW_EVICTION=1.

Every Redis here is a redis-server of the test's own; the shared one is never
reconfigured.
"""

from __future__ import annotations

import httpx
import pytest

from authbench.infra.launcher import TargetFailed, TargetProcess
from targets.stores import RedisStore, StoreFacts, UnsafeStore, check_eviction
from targets.stores.eviction import eviction_problem
from tests.conftest import StartApp, StartTarget
from tests.support import FAST_KDF, unique_namespace
from tests.targets.redis_server import StartRedis

FIX = "CONFIG SET maxmemory-policy noeviction"


@pytest.mark.parametrize(("maxmemory", "policy", "is_unsafe"), [
    (0, "noeviction", False),
    (0, "allkeys-lru", False),  # no limit: nothing is ever evicted
    (1 << 20, "noeviction", False),  # at the limit writes fail (503), nothing is dropped
    (1 << 20, "allkeys-lru", True),
    (1 << 20, "volatile-ttl", True),  # blocklist entries and sessions all have a TTL
    (1 << 20, None, False),  # not a Redis
])
def test_which_settings_may_evict(maxmemory: int, policy: str | None, is_unsafe: bool) -> None:
    facts = StoreFacts(maxmemory=maxmemory, maxmemory_policy=policy)
    problem = eviction_problem(facts, "here:1")
    assert (problem is not None) is is_unsafe
    if problem is not None:
        assert f"maxmemory-policy is {policy}" in problem and "here:1" in problem


async def test_check_refuses_an_evicting_redis_unless_allowed(start_redis: StartRedis) -> None:
    server = start_redis("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    store = RedisStore(server.url, "ab", 2.0, 2)
    await store.open()
    try:
        with pytest.raises(UnsafeStore) as refused:
            await check_eviction(store, is_allowed=False)
        message = str(refused.value)
        assert "maxmemory-policy is allkeys-lru" in message
        assert FIX in message and "CONFIG SET maxmemory 0" in message
        assert "STORE_ALLOW_EVICTION=1" in message
        report = await check_eviction(store, is_allowed=True)
        assert report == {"kind": "redis", "maxmemory": 64 << 20,
                          "maxmemory_policy": "allkeys-lru", "can_evict": True,
                          "eviction_allowed": True}
        with server.client() as client:
            client.config_set("maxmemory-policy", "noeviction")  # the fix the message names
        assert (await check_eviction(store, is_allowed=False))["can_evict"] is False
    finally:
        await store.close()


@pytest.mark.slow
def test_a_target_refuses_to_start_on_an_evicting_redis_then_starts_with_the_override(
    start_redis: StartRedis, start_target: StartTarget,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start_redis("--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru")
    env = {**FAST_KDF, "AUTH_MODE": "session", "STORE": "redis", "STORE_URL": server.url,
           "STORE_NAMESPACE": "ab"}
    refused = TargetProcess(env, log_path=tmp_path_factory.mktemp("refused") / "target.log")
    refused.start()
    try:
        with pytest.raises(TargetFailed) as failed:
            refused.wait_ready(timeout=20.0)
    finally:
        refused.stop()
    message = str(failed.value)
    assert "exited with code" in message, message
    assert "UnsafeStore" in message and "maxmemory-policy is volatile-lru" in message, message
    assert FIX in message and "STORE_ALLOW_EVICTION=1" in message, message

    allowed = start_target(**{**env, "STORE_ALLOW_EVICTION": "1"})
    health = httpx.get(f"{allowed.url}/health").json()
    assert health["store_settings"] == {
        "kind": "redis", "maxmemory": 64 << 20, "maxmemory_policy": "volatile-lru",
        "can_evict": True, "eviction_allowed": True,
    }
    assert "starting anyway because STORE_ALLOW_EVICTION=1" in allowed.log_path.read_text()


def test_health_reports_a_safe_store_too(redis_url: str, start_app: StartApp) -> None:
    target = start_app(AUTH_MODE="session", STORE="redis", STORE_URL=redis_url,
                       STORE_NAMESPACE=unique_namespace())
    with target.client() as client:
        settings = client.get("/health").json()["store_settings"]
    assert settings["kind"] == "redis" and settings["eviction_allowed"] is False
    assert settings["can_evict"] is False  # the shared Redis runs without eviction
