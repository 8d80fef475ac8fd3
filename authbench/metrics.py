"""Server-side figures for a cell: each node's CPU seconds and peak RSS, the store's counters."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

SAMPLE_INTERVAL = 0.25


@dataclass
class NodeUsage:
    pid: int
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    _start_cpu: float | None = None
    # (Unix time, CPU seconds since the first sample): lets analysis count the CPU of
    # exactly the window its latency histograms cover.
    timeline: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class NodeSampler:
    """Samples every node process in a thread while the measured phase runs."""

    pids: list[int]
    usage: dict[int, NodeUsage] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self, final: bool = False) -> None:
        for pid in self.pids:
            entry = self.usage.setdefault(pid, NodeUsage(pid))
            try:
                process = psutil.Process(pid)
                with process.oneshot():
                    times = process.cpu_times()
                    rss = process.memory_info().rss
            except psutil.Error:
                continue  # a dead node is reported by the runner
            cpu = times.user + times.system
            if entry._start_cpu is None:
                entry._start_cpu = cpu
            entry.cpu_seconds = cpu - entry._start_cpu
            entry.timeline.append((round(time.time(), 3), round(entry.cpu_seconds, 4)))
            entry.peak_rss_bytes = max(entry.peak_rss_bytes, rss)

    def _loop(self, delay: float) -> None:
        if self._stop.wait(delay):
            return
        self._sample()  # the first sample marks the start of the measured phase
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()

    def start(self, delay: float = 0.0) -> None:
        """Begin counting CPU after delay seconds (the warm-up is not counted)."""
        self._thread = threading.Thread(target=self._loop, args=(delay,), name="node-sampler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._sample(final=True)
        return [{"pid": u.pid, "cpu_seconds": round(u.cpu_seconds, 4),
                 "peak_rss_bytes": u.peak_rss_bytes, "cpu_timeline": u.timeline}
                for u in self.usage.values()]


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
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        info = client.info()
    finally:
        client.close()
    return {name: info.get(name) for name in INFO_FIELDS}


async def _postgres_sizes(url: str, namespace: str) -> dict[str, Any]:
    import asyncpg

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
    """after, plus the growth of each numeric counter over the cell."""
    delta = {f"{k}_delta": after[k] - before[k] for k in after
             if isinstance(after.get(k), int) and isinstance(before.get(k), int)}
    return {"before": before, "after": after, **delta}
