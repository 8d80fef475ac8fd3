"""JWT_REVOCATION=pubsub across real nodes: a logout on one node reaches the others.

Each test runs two or three uvicorn targets on one Redis namespace with one shared
signing key, as the suite runner's multi-node cells do.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from authbench.launcher import TargetProcess
from targets.keys import generate_key, write_key
from targets.settings import ConfigError, Settings
from tests.conftest import StartTarget
from tests.support import unique_namespace

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
