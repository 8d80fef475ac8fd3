"""`authbench bench-redis-clients`: CPU per GET, redis-py's asyncio client against resp.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from targets.stores.resp import RespClient

Get = Callable[[str], Awaitable[Any]]


async def cpu_per_call(get: Get, key: str, concurrency: int, batches: int) -> float:
    """CPU microseconds per call, calls issued concurrency at a time."""
    await asyncio.gather(*(get(key) for _ in range(concurrency)))  # warm-up, connections open
    started = time.process_time()
    for _ in range(batches):
        await asyncio.gather(*(get(key) for _ in range(concurrency)))
    return (time.process_time() - started) * 1e6 / (batches * concurrency)


async def compare(url: str, concurrency: int, batches: int, rounds: int) -> dict[str, list[float]]:
    """Interleave the two clients over rounds; return CPU µs per GET for each."""
    key = "authbench:clientbench"
    pool = BlockingConnectionPool.from_url(
        url, max_connections=20, timeout=0.5, socket_timeout=0.5, socket_connect_timeout=0.5)
    redis_py = Redis(connection_pool=pool)
    resp = RespClient(url, timeout=0.5, size=4)
    await resp.execute("SET", key, b"x" * 200, "PX", 600_000)
    results: dict[str, list[float]] = {"redis-py": [], "resp.py": []}
    try:
        for _ in range(rounds):
            results["redis-py"].append(await cpu_per_call(redis_py.get, key, concurrency, batches))
            results["resp.py"].append(
                await cpu_per_call(lambda k: resp.execute("GET", k), key, concurrency, batches)
            )
    finally:
        await resp.execute("UNLINK", key)
        await resp.close()
        await redis_py.aclose()
        await pool.disconnect()
    return results
