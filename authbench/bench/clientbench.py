"""`authbench bench-redis-clients`: CPU per GET, redis-py's asyncio client against resp.py."""

from __future__ import annotations

import argparse
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


def cmd_bench_redis_clients(args: argparse.Namespace) -> int:
    """Measure the CPU one GET costs through each Redis client, in this process."""
    import uvloop

    results = uvloop.run(compare(args.url, args.concurrency, args.batches, args.rounds))
    for name, values in results.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:<9} CPU µs per GET ({args.concurrency} concurrent): {shown}")
    return 0


def add_parser(sub: Any) -> None:
    """Register `authbench bench-redis-clients`."""
    parser = sub.add_parser("bench-redis-clients", help=cmd_bench_redis_clients.__doc__,
                            description=cmd_bench_redis_clients.__doc__)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.set_defaults(handler=cmd_bench_redis_clients)
