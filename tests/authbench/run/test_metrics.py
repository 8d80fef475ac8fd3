"""What a window cost: CPU of real processes and of the real stores, over a set window."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import asyncpg
import psutil
import pytest
import redis

from authbench.run.metrics import (
    PostgresCpu,
    RedisCpu,
    WindowSampler,
    counter_delta,
    store_counters,
    store_cpu_source,
)

BURN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"


def test_window_sampler_counts_a_busy_process_over_exactly_the_window() -> None:
    busy = subprocess.Popen([sys.executable, "-c", BURN])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        start = time.time() + 0.3
        sampler = WindowSampler(start, start + 1.5, [busy.pid], [idle.pid],
                                proxies=[busy.pid]).start()
        record = sampler.finish()
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait(10)
    [node] = record["nodes"]
    [generator] = record["generator"]
    times = [t for t, _ in node["cpu_timeline"]]
    assert times[0] >= start and times[-1] >= start + 1.5 and times[-1] < start + 2.0
    assert len(times) >= 6  # every SAMPLE_INTERVAL, first and last included
    # A spinning process on a 1.5 s window: most of a core (the machine may be shared).
    assert 0.7 < node["cpu_seconds"] < 1.7, node["cpu_seconds"]
    assert generator["cpu_seconds"] < 0.1  # sleeping
    assert len(record["cpu_busy"]) >= 1 and all(0 <= b <= 1 for b in record["cpu_busy"])
    assert "store_cpu" not in record
    [proxy] = record["proxy"]  # a delay line's CPU is sampled on its own, apart
    assert 0.7 < proxy["cpu_seconds"] < 1.7, proxy["cpu_seconds"]


def test_a_sampler_without_a_delay_line_records_none() -> None:
    start = time.time()
    record = WindowSampler(start, start + 0.3, [], []).start().finish()
    assert "proxy" not in record


def test_the_sampler_counts_the_store_commands_of_the_window_alone(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.get("authbench-metrics-probe")  # before the window: not counted
    start = time.time() + 0.3
    sampler = WindowSampler(start, start + 1.0, [], [],
                            store_cpu_source("redis", redis_url)).start()
    while time.time() < start + 0.4:
        time.sleep(0.05)
    for _ in range(40):
        client.set("authbench-metrics-probe", "1")
    record = sampler.finish()
    client.close()
    calls = record["store_cpu"]["commands_delta"]
    assert calls["set"] >= 40 and calls.get("get", 0) < 40  # others may share this Redis


def test_store_counters_count_each_command_a_window_sent(redis_url: str) -> None:
    before = store_counters("redis", redis_url, "unused")
    client = redis.Redis.from_url(redis_url)
    for _ in range(50):
        client.get("authbench-metrics-probe")
    client.mget("authbench-metrics-probe", "authbench-metrics-other")
    client.close()
    delta = counter_delta(before, store_counters("redis", redis_url, "unused"))
    calls = delta["commands_delta"]
    # the shared Redis may serve others too: at least ours, and only commands that grew
    assert calls["get"] >= 50 and calls["mget"] >= 1
    assert all(count > 0 for count in calls.values())


def test_redis_cpu_grows_with_commands(redis_url: str) -> None:
    source = store_cpu_source("redis", redis_url)
    assert isinstance(source, RedisCpu)
    before = source.read()
    client = redis.Redis.from_url(redis_url)
    for _ in range(3000):
        client.get("authbench-metrics-probe")
    client.close()
    after = source.read()
    source.close()
    assert before is not None and after is not None and after > before


def test_postgres_cpu_counts_local_server_processes(postgres_url: str) -> None:
    if not any(p.info["name"] == "postgres" for p in psutil.process_iter(["name"])):
        pytest.skip("PostgreSQL answers on loopback but runs elsewhere (a container?)")
    source = store_cpu_source("postgres", postgres_url)
    assert isinstance(source, PostgresCpu)

    async def queries() -> float | None:
        conn = await asyncpg.connect(postgres_url)  # a backend the baseline already knows
        source.read()
        for _ in range(1500):
            await conn.fetchval("SELECT 1")
        spent = source.read()  # while the backend lives: one that ended keeps its last
        await conn.close()
        return spent

    spent = asyncio.run(queries())
    assert spent is not None and spent > 0
    assert store_cpu_source("postgres", "postgresql://db.example:5432/x") is None
    assert store_cpu_source("memory", "") is None
