"""PostgreSQL backends terminated under load: every answer is 200 or 503, never a 500."""

from __future__ import annotations

import asyncio
import threading
import time

import asyncpg
import httpx
import pytest

from tests.conftest import StartTarget
from tests.support import unique_namespace

pytestmark = pytest.mark.slow  # backends terminated under load, then a reconnect


def test_terminated_backends_answer_503_never_500(start_target: StartTarget,
                                                  postgres_url: str) -> None:
    namespace = unique_namespace()
    target = start_target(AUTH_MODE="session", STORE="postgres", STORE_URL=postgres_url,
                          STORE_NAMESPACE=namespace)
    with httpx.Client(base_url=target.url, timeout=10) as client:
        answer = client.post("/auth/login", json={"username": "user1", "password": "pw-user1"})
        cookie = {"Cookie": f"sid={answer.cookies['sid']}"}
    statuses: list[int] = []
    stop = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=target.url, timeout=10) as client:
            while not stop.is_set():
                statuses.append(client.get("/api/me", headers=cookie).status_code)

    async def terminate(rounds: int) -> int:
        conn = await asyncpg.connect(postgres_url)
        killed = 0
        try:
            for _ in range(rounds):
                killed += len(await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1", f"authbench:{namespace}"))
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        return killed

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        time.sleep(0.5)
        killed = asyncio.run(terminate(10))
        time.sleep(1.0)  # the pool reconnects by itself
    finally:
        stop.set()
        for reader in readers:
            reader.join(15)
    assert killed > 0
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses[-1] == 200  # recovered without a restart
