"""Redis alone on a core: a private redis-server, pinned, driven by redis-benchmark.

The server is the redis-server on PATH, started without persistence on a free loopback
port and pinned to one CPU; redis-benchmark runs on the other CPUs, -P 1 (each client
waits for its reply, as a target's request does). The store's CPU comes from Redis
itself (INFO cpu over the repeat) and its command count from INFO commandstats, so CPU
µs per operation is the server's own figure, independent of the client.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from authbench.bench.storeceiling.fill import fill, run_async
from authbench.bench.storeceiling.operations import (
    NAMESPACE,
    RedisOperation,
    redis_operations,
    session_key,
)
from authbench.bench.storeceiling.result import (
    StoreCeilingConfig,
    StoreCeilingError,
    summarize,
)
from authbench.bench.storeceiling.tools import (
    DISTURBED_NOTE,
    CpuPlan,
    busy_shares,
    cpu_busy,
    disturbance,
    limited_by,
    run_pinned,
    tool_version,
)
from authbench.infra.ports import LOOPBACK
from authbench.run.faults import PrivateRedis
from authbench.run.placement import pin
from targets.stores import RedisStore

PROBE_REQUESTS = 20_000  # a first run per operation: warms up, and sizes the repeats
MIN_REQUESTS = 10_000
STORE_TIMEOUT = 60.0  # loading 10^5 keys is not a request
Say = Callable[[str], None]


@dataclass(frozen=True)
class BenchmarkFigures:
    """What redis-benchmark --csv reports for one command."""

    rps: float
    avg_ms: float
    p50_ms: float
    p99_ms: float


def parse_benchmark_csv(text: str) -> BenchmarkFigures:
    """The figures of redis-benchmark --csv output (a header and one row).

    The row's first field is the command as given, quotes unescaped (a session value is
    JSON), so the row is read from the right: the header names the numeric fields.
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 2 or not lines[0].startswith('"test",'):
        raise StoreCeilingError(f"redis-benchmark printed {max(0, len(lines) - 1)} result "
                                f"rows, not 1: {text.strip()[:300]!r}")
    names = next(csv.reader([lines[0]]))[1:]
    fields = lines[1].rsplit(",", len(names))[1:]  # numbers: no comma inside
    row = dict(zip(names, (field.strip('"') for field in fields), strict=False))
    try:
        return BenchmarkFigures(float(row["rps"]), float(row["avg_latency_ms"]),
                                float(row["p50_latency_ms"]), float(row["p99_latency_ms"]))
    except (KeyError, ValueError) as exc:
        raise StoreCeilingError(f"unreadable redis-benchmark CSV: {exc}: {text[:300]!r}"
                                ) from None


@dataclass(frozen=True)
class ServerCounters:
    """Redis's CPU seconds and its per-command counts (INFO cpu, INFO commandstats)."""

    cpu_s: float
    calls: dict[str, int]
    usec: dict[str, int]
    failed: int

    @classmethod
    def read(cls, client: redis.Redis) -> ServerCounters:
        cpu = client.info("cpu")
        stats = client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
        usec = {name.removeprefix("cmdstat_"): int(v["usec"]) for name, v in stats.items()}
        failed = sum(int(v.get("failed_calls", 0)) + int(v.get("rejected_calls", 0))
                     for v in stats.values())
        return cls(float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), calls, usec,
                   failed)


def counter_delta(before: ServerCounters, after: ServerCounters, command: str
                  ) -> dict[str, Any]:
    """CPU, commands (all, and this one) and failures between two readings."""
    name = command.lower()
    total = sum(after.calls.values()) - sum(before.calls.values())
    calls = after.calls.get(name, 0) - before.calls.get(name, 0)
    usec = after.usec.get(name, 0) - before.usec.get(name, 0)
    return {"cpu_s": after.cpu_s - before.cpu_s, "commands": total, "calls": calls,
            "command_us_per_call": usec / calls if calls else None,
            "failed": after.failed - before.failed}


def repeat_figures(figures: BenchmarkFigures, delta: dict[str, Any], requests: int,
                   client_cpu_s: float, wall_s: float, busy: list[float]) -> dict[str, Any]:
    """One repeat's row: throughput from the tool, CPU per command from the server."""
    seconds = requests / figures.rps  # redis-benchmark's own clock, first send to last reply
    store_share = delta["cpu_s"] / seconds
    client_share = client_cpu_s / wall_s  # redis-benchmark runs one thread
    return {
        "requests": requests, "seconds": round(seconds, 3), "ops_per_s": figures.rps,
        "cpu_us_per_op": delta["cpu_s"] / delta["commands"] * 1e6 if delta["commands"] else None,
        "command_us_per_call": delta["command_us_per_call"],
        "store_cpu_share": round(store_share, 3), "client_cpu_share": round(client_share, 3),
        "cpu_busy": busy, "p50_ms": figures.p50_ms, "p99_ms": figures.p99_ms,
        "limited_by": limited_by(store_share, client_share),
    }


class PinnedRedis:
    """A private redis-server pinned to the store's CPUs, and a client to read its INFO."""

    def __init__(self, plan: CpuPlan, folder: Path) -> None:
        self.server = PrivateRedis(folder / "redis.log", is_persistent=False)
        self.plan = plan
        self.client: redis.Redis | None = None

    def __enter__(self) -> PinnedRedis:
        try:
            self.server.start()
            assert self.server.process is not None
            pin(self.server.process.pid, self.plan.store_cpus)  # every thread, bio ones too
            self.client = redis.Redis(host=LOOPBACK, port=self.server.port, socket_timeout=10)
        except BaseException:
            self.server.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.client is not None:
            self.client.close()
        self.server.close()


def _benchmark(server: PinnedRedis, operation: RedisOperation, clients: int, requests: int,
               keys: int) -> dict[str, Any]:
    assert server.client is not None
    command = ["redis-benchmark", "-h", LOOPBACK, "-p", str(server.server.port),
               "-c", str(clients), "-n", str(requests), "-r", str(keys), "-P", "1", "--csv",
               *operation.args]
    before, busy_before = ServerCounters.read(server.client), cpu_busy()
    done = run_pinned(command, server.plan.client_cpus)
    after, busy_after = ServerCounters.read(server.client), cpu_busy()
    if done.returncode != 0:
        raise StoreCeilingError(f"redis-benchmark exited with {done.returncode}: "
                                f"{(done.stderr or done.stdout).strip()[-300:]}")
    delta = counter_delta(before, after, operation.args[0])
    # redis-benchmark counts an error reply as an answer: the server's count tells.
    if delta["failed"] or delta["calls"] < requests:
        raise StoreCeilingError(f"{operation.name}: Redis ran {delta['calls']} of {requests} "
                                f"{operation.args[0]} commands, {delta['failed']} failed")
    busy = busy_shares(busy_before, busy_after)
    row = repeat_figures(parse_benchmark_csv(done.stdout), delta, requests, done.cpu_s,
                         done.wall_s, busy)
    return {**row, **disturbance(busy, server.plan, row["store_cpu_share"],
                                 row["client_cpu_share"], server.plan.is_pinned)}


def _sizes(client: redis.Redis, operation: RedisOperation) -> dict[str, Any]:
    """The bytes of each key the command names, and of each value it finds, as loaded."""
    keys = [a.replace("__rand_int__", "0" * 12) for a in operation.args[1:]]
    if operation.args[0] == "SET":
        keys = keys[:1]
    lengths = [int(client.strlen(key)) for key in keys]
    return {"key_bytes": [len(key.encode()) for key in keys], "value_bytes": lengths}


def _measure_operation(server: PinnedRedis, operation: RedisOperation,
                       config: StoreCeilingConfig, say: Say) -> dict[str, Any]:
    """A probe (warm-up, and sizes the repeats to config.seconds), then the repeats."""
    assert server.client is not None
    clients = config.redis_clients
    probe = _benchmark(server, operation, clients, PROBE_REQUESTS, config.keys)
    requests = max(MIN_REQUESTS, int(probe["ops_per_s"] * config.seconds))
    repeats = []
    for index in range(config.repeats):
        row = _benchmark(server, operation, clients, requests, config.keys)
        repeats.append(row)
        say(f"  redis {operation.name} #{index + 1}: {row['ops_per_s']:,.0f} ops/s, "
            f"{row['cpu_us_per_op'] or 0:.2f} CPU µs/op, store CPU "
            f"{row['store_cpu_share']:.0%}, client CPU {row['client_cpu_share']:.0%}"
            f" ({row['limited_by']}){DISTURBED_NOTE if row['is_disturbed'] else ''}")
    return summarize({
        "description": operation.description, "command": operation.shown(),
        **_sizes(server.client, operation), "replies": operation.replies, "clients": clients,
        "seconds": config.seconds, "probe_ops_per_s": probe["ops_per_s"]},
        repeats, cores=1)  # Redis runs commands on one thread


def _version_at(url: str) -> str | None:
    """The version of the Redis the run used (the figures come from a private one)."""
    try:
        with redis.Redis.from_url(url, socket_timeout=5) as client:
            return str(client.info("server")["redis_version"])
    except (redis.RedisError, OSError, KeyError):
        return None


def measure_redis(config: StoreCeilingConfig, plan: CpuPlan, say: Say) -> dict[str, Any]:
    """Every Redis operation at saturation on a private pinned server: the stores.redis entry."""
    with tempfile.TemporaryDirectory(prefix="authbench-store-") as folder, \
            PinnedRedis(plan, Path(folder)) as server:
        assert server.client is not None
        info = server.client.info("server")
        store = RedisStore(server.server.url, NAMESPACE, STORE_TIMEOUT, 4)

        async def load() -> dict[str, Any]:
            await store.open()
            try:
                return await fill(store, config.keys, server_id=str(info["run_id"]))
            finally:
                await store.close()

        say(f"redis: private redis-server {info['redis_version']} on CPU "
            f"{','.join(map(str, plan.store_cpus))}, loading {config.keys:,} sessions and "
            f"{config.keys:,} blocklist entries")
        loaded = run_async(load())
        session_value = server.client.get(f"{NAMESPACE}:s:{session_key(0)}")
        if not isinstance(session_value, bytes):
            raise StoreCeilingError("the loaded sessions are not in the private Redis")
        operations = {name: _measure_operation(server, operation, config, say)
                      for name, operation in redis_operations(session_value).items()}
        return {
            "server": {"version": info["redis_version"], "how": "private redis-server "
                       "(--save '' --appendonly no), loopback TCP", "binary": "redis-server",
                       "given_server_version": _version_at(config.redis_url)},
            "tool": tool_version("redis-benchmark"), "store_cpus": list(plan.store_cpus),
            "client_cpus": list(plan.client_cpus), "is_pinned": plan.is_pinned,
            "loaded": loaded, "operations": operations,
        }
