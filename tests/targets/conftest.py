"""Fixtures of the target tests: redis-servers of their own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import IS_CI
from tests.targets.redis_server import PrivateRedis, StartRedis


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
