"""The runner's conformance check against real targets: what it records beside the checks."""

from __future__ import annotations

from analysis.data.conformance import store_settings_text
from authbench.run.verify import verify_target
from tests.conftest import StartTarget
from tests.support import FAST_KDF
from tests.targets.redis_server import StartRedis


def test_the_check_records_the_store_settings_the_target_ran_on(
    start_redis: StartRedis, start_target: StartTarget
) -> None:
    """What the runner keeps (cell.json's verify) and how the report words it."""
    evicting = start_redis("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    target = start_target(AUTH_MODE="jwt", JWT_REVOCATION="blocklist", STORE="redis",
                          STORE_URL=evicting.url, STORE_ALLOW_EVICTION="1", **FAST_KDF)
    checked = verify_target(target.url)
    assert checked.is_passed, checked.reason
    assert checked.as_dict()["store_settings"] == {
        "kind": "redis", "maxmemory": 64 << 20, "maxmemory_policy": "allkeys-lru",
        "can_evict": True, "eviction_allowed": True,
    }
    assert store_settings_text(checked.store_settings) == (
        "redis maxmemory-policy allkeys-lru, maxmemory 67,108,864 B "
        "(may evict: allowed by STORE_ALLOW_EVICTION=1)")
    memory = verify_target(start_target(AUTH_MODE="session", STORE="memory", **FAST_KDF).url)
    assert store_settings_text(memory.store_settings) == "memory"
