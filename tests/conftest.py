"""Shared fixtures: real Redis and PostgreSQL, live targets on uvicorn, targets in process."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest

from authbench.infra.launcher import TargetProcess
from tests.support import FAST_KDF, InProcessTarget, drop_namespace
from tests.targets.redis_server import PrivateRedis, StartRedis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


HOW_TO_START = {
    "redis": "start it with: redis-server --daemonize yes --port 6379 --save ''",
    "postgres": "start it with: pg_ctlcluster <version> main start "
                "(trust auth on 127.0.0.1:5432, database 'test')",
}


def _answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1",
                                       parsed.port or default_port), timeout=1.0):
            return True
    except OSError:
        return False


def _require(service: str, url: str, default_port: int) -> str:
    if _answers(url, default_port):
        return url
    message = f"{service} is not reachable at {url}; {HOW_TO_START[service]}"
    if IS_CI:
        pytest.fail(f"CI needs {message}")  # in CI a missing store is a failure, never a skip
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis URL (skips on a user's machine without Redis; fails in CI)."""
    return _require("redis", REDIS_URL, 6379)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A reachable PostgreSQL URL (skips without PostgreSQL; fails in CI)."""
    return _require("postgres", DATABASE_URL, 5432)


StartTarget = Callable[..., TargetProcess]


@pytest.fixture
def start_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartTarget]:
    """Start targets (real uvicorn processes) for one test; all stopped afterwards."""
    started: list[TargetProcess] = []

    def start(**env: str) -> TargetProcess:
        full = {**FAST_KDF, **env}
        log = tmp_path_factory.mktemp("target") / "target.log"
        target = TargetProcess(full, log_path=log)
        target.start()
        started.append(target)
        target.wait_ready()
        return target

    yield start
    for target in started:
        target.stop()
        drop_namespace(target.env)


StartApp = Callable[..., InProcessTarget]


@pytest.fixture
def start_app() -> Iterator[StartApp]:
    """Serve targets in this process (no uvicorn, lifespan run) for one test; all stopped after."""
    started: list[InProcessTarget] = []

    def start(**env: str) -> InProcessTarget:
        target = InProcessTarget({**FAST_KDF, **env})
        started.append(target)
        target.start()
        return target

    yield start
    for target in started:
        target.stop()
        drop_namespace(target.env)


@pytest.fixture
def start_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartRedis]:
    """Start redis-servers of the test's own (extra options as arguments); all stopped after."""
    binary = shutil.which("redis-server")
    if binary is None:
        if IS_CI:  # as for the shared stores: in CI a missing server fails, never skips
            pytest.fail("CI needs redis-server installed (the loss tests restart their own)")
        pytest.skip("redis-server is not installed")
    started: list[PrivateRedis] = []

    def start(*args: str) -> PrivateRedis:
        server = PrivateRedis(binary, tmp_path_factory.mktemp("redis"), *args)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
