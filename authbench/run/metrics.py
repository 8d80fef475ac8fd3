"""What a measured window cost: CPU of the targets, the load generator and the store.

A WindowSampler takes its first sample at the window's first measured instant and
its last at the window's end, with samples between (a timeline, so analysis counts
CPU over exactly the span its latency histograms cover). It reads:

- each target node and each Locust process: CPU seconds (psutil) and peak RSS;
- the store: Redis's own `INFO cpu` (used_cpu_user + used_cpu_sys, the whole server),
  or the CPU of every local PostgreSQL process (backends included);
- the delay line between the targets and their store (a cell with a store round trip):
  its own process, never counted as the target's or the store's;
- every core's busy share over the window, so a shared core can be seen.

The store counters (Redis INFO with its per-command call counts, PostgreSQL table
sizes) are read around a cell.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncpg
import psutil
import redis

SAMPLE_INTERVAL = 0.25
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", None}


class StoreCpu(Protocol):
    """Cumulative CPU seconds of a store server, or None when it cannot be read."""

    kind: str

    def read(self) -> float | None: ...
    def commands(self) -> dict[str, int] | None: ...
    def close(self) -> None: ...


class RedisCpu:
    """Redis's CPU as the server itself counts it (INFO cpu)."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2)

    def read(self) -> float | None:
        try:
            info = self.client.info("cpu")
        except Exception:
            return None
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def commands(self) -> dict[str, int] | None:
        """Calls per command so far (INFO commandstats), or None when it cannot be read."""
        try:
            return command_calls(self.client.info("commandstats"))
        except Exception:
            return None

    def close(self) -> None:
        self.client.close()


class PostgresCpu:
    """The CPU of every local `postgres` process; a process that starts mid-window
    counts from zero, one that ends keeps what it had."""

    kind = "postgres"

    def __init__(self) -> None:
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def read(self) -> float | None:
        is_first = not self._base
        for process in psutil.process_iter(["name", "cpu_times"]):
            if process.info["name"] != "postgres" or process.info["cpu_times"] is None:
                continue
            times = process.info["cpu_times"]
            cpu = times.user + times.system
            self._base.setdefault(process.pid, cpu if is_first else 0.0)
            self._last[process.pid] = cpu
        return sum(self._last[pid] - self._base[pid] for pid in self._last)

    def commands(self) -> dict[str, int] | None:
        return None  # PostgreSQL counts statements per table, not per request's call

    def close(self) -> None:
        return None


def store_cpu_source(store: str, url: str) -> StoreCpu | None:
    """How to read the store's CPU, or None (memory; a PostgreSQL on another host)."""
    if store == "redis":
        return RedisCpu(url)
    if store == "postgres" and urlsplit(url).hostname in LOCAL_HOSTS:
        return PostgresCpu()
    return None


@dataclass
class _Series:
    pid: int
    start: float | None = None
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    timeline: list[tuple[float, float]] = field(default_factory=list)

    def add(self, now: float, cpu: float | None, rss: int = 0) -> None:
        if cpu is None:
            return
        if self.start is None:
            self.start = cpu
        self.cpu_seconds = cpu - self.start
        self.timeline.append((round(now, 4), round(self.cpu_seconds, 5)))
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "cpu_seconds": round(self.cpu_seconds, 5),
                "peak_rss_bytes": self.peak_rss_bytes, "cpu_timeline": self.timeline}


def _process_cpu(pid: int) -> tuple[float | None, int]:
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            rss = process.memory_info().rss
    except psutil.Error:
        return None, 0  # a dead process is reported by the runner
    return times.user + times.system, rss


class WindowSampler:
    """Samples targets, generator and store from `start` to `end` (Unix times) in a thread."""

    def __init__(self, start: float, end: float, targets: list[int], generator: list[int],
                 store: StoreCpu | None = None, proxies: list[int] | None = None) -> None:
        self.start_at, self.end_at = start, end
        self.targets = [_Series(pid) for pid in targets]
        self.generator = [_Series(pid) for pid in generator]
        self.proxies = [_Series(pid) for pid in proxies or []]
        self.store = store
        self.store_series = _Series(0)
        self._commands: list[dict[str, int] | None] = []  # at the first and last sample
        self._cores_before: list[Any] = []
        self._cores_after: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="window-sampler", daemon=True)

    def _sample(self) -> None:
        now = time.time()
        for series in [*self.targets, *self.generator, *self.proxies]:
            series.add(now, *_process_cpu(series.pid))
        if self.store is not None:
            self.store_series.add(now, self.store.read())

    def _loop(self) -> None:
        if self._stop.wait(max(0.0, self.start_at - time.time())):
            return
        self._cores_before = psutil.cpu_times(percpu=True)
        self._sample()
        self._read_commands()
        while not self._stop.wait(min(SAMPLE_INTERVAL, max(0.0, self.end_at - time.time()))):
            self._sample()
            if time.time() >= self.end_at:
                break
        self._read_commands()
        self._cores_after = psutil.cpu_times(percpu=True)

    def _read_commands(self) -> None:
        if self.store is not None:
            self._commands.append(self.store.commands())

    def start(self) -> WindowSampler:
        self._thread.start()
        return self

    def finish(self, cancel: bool = False) -> dict[str, Any]:
        """Wait for the window's end (or cancel now) and return what cell.json keeps."""
        if cancel:
            self._stop.set()
        self._thread.join(max(0.0, self.end_at - time.time()) + 10)
        self._stop.set()
        record: dict[str, Any] = {
            "nodes": [s.as_dict() for s in self.targets],
            "generator": [s.as_dict() for s in self.generator],
            "cpu_busy": _busy(self._cores_before, self._cores_after),
        }
        if self.proxies:
            record["proxy"] = [s.as_dict() for s in self.proxies]
        if self.store is not None:
            record["store_cpu"] = {"kind": self.store.kind,
                                   "cpu_seconds": round(self.store_series.cpu_seconds, 5),
                                   "cpu_timeline": self.store_series.timeline}
            if len(self._commands) == 2 and None not in self._commands:
                before, after = self._commands
                assert before is not None and after is not None
                # Over the measured window alone, as the CPU: store calls per request.
                record["store_cpu"]["commands_delta"] = _grown(before, after)
        return record


def _busy(before: list[Any], after: list[Any]) -> list[float]:
    """Each core's busy share between two psutil.cpu_times(percpu=True) readings."""
    shares = []
    for a, b in zip(before, after, strict=False):
        total = sum(b) - sum(a)
        idle = (b.idle + getattr(b, "iowait", 0.0)) - (a.idle + getattr(a, "iowait", 0.0))
        shares.append(round(1 - idle / total, 4) if total > 0 else float("nan"))
    return shares


INFO_FIELDS = ("total_commands_processed", "used_memory", "connected_clients",
               "keyspace_hits", "keyspace_misses", "instantaneous_ops_per_sec")


def store_counters(store: str, url: str, namespace: str) -> dict[str, Any]:
    """Redis INFO counters, or PostgreSQL table sizes, for the cell's store."""
    try:
        if store == "redis":
            return _redis_info(url)
        if store == "postgres":
            return asyncio.run(_postgres_sizes(url, namespace))
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {}


def _redis_info(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        info = client.info()
        commands = client.info("commandstats")
    finally:
        client.close()
    counters: dict[str, Any] = {name: info.get(name) for name in INFO_FIELDS}
    counters["commands"] = command_calls(commands)
    return counters


def command_calls(commandstats: dict[str, Any]) -> dict[str, int]:
    """Calls per command from INFO commandstats ("cmdstat_get" -> "get")."""
    return {name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in commandstats.items() if isinstance(stats, dict)}


def _grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Each command's calls between two readings, those that grew only."""
    return {name: calls - before.get(name, 0) for name, calls in after.items()
            if calls != before.get(name, 0)}


async def _postgres_sizes(url: str, namespace: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) AS bytes, c.reltuples"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind = 'r'", namespace)
    finally:
        await conn.close()
    return {"tables": {r["relname"]: {"bytes": r["bytes"], "rows_estimate": r["reltuples"]}
                       for r in rows}}


def counter_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """after, plus the growth of each numeric counter (and each command's calls) over the
    cell."""
    delta: dict[str, Any] = {f"{k}_delta": after[k] - before[k] for k in after
                             if isinstance(after.get(k), int) and isinstance(before.get(k), int)}
    if after.get("commands"):
        delta["commands_delta"] = _grown(before.get("commands") or {}, after["commands"])
    return {"before": before, "after": after, **delta}
