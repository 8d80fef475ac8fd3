"""PostgreSQL at saturation: pgbench running the modes' own statements in a private schema.

The schema is the targets' own (PostgresStore creates it), filled through their bulk path
and dropped afterwards. pgbench runs -M prepared (asyncpg prepares too), -n, one script
per operation. Its connections carry an application_name of their own, so their
backends are found in pg_stat_activity, pinned to the store's CPU when allowed, and
their CPU read over the middle of the run (after connecting, before the end).
"""

from __future__ import annotations

import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

from authbench.bench.storeceiling.fill import fill, run_async
from authbench.bench.storeceiling.operations import DEFAULTS, SQL_OPERATIONS, SqlOperation
from authbench.bench.storeceiling.result import StoreCeilingConfig, StoreCeilingError, summarize
from authbench.bench.storeceiling.tools import (
    DISTURBED_NOTE,
    CpuPlan,
    busy_shares,
    cpu_busy,
    disturbance,
    limited_by,
    process_cpu_s,
    run_pinned,
    tool_version,
)
from targets.stores import PostgresStore

STORE_TIMEOUT = 60.0  # loading 10^5 rows is not a request
CONNECT_WITHIN = 10.0  # seconds for pgbench's connections to show in pg_stat_activity
SETTLED_AT = 1.0  # seconds after launch: connected, pinned; the CPU window opens
ENDS_BEFORE = 0.4  # seconds before pgbench's end: the CPU window closes
SETTINGS = ("shared_buffers", "synchronous_commit", "max_connections")
Say = Callable[[str], None]
_PROGRESS = re.compile(r"progress: ([\d.]+) s, ([\d.]+) tps")


@dataclass(frozen=True)
class PgbenchFigures:
    """What pgbench reported: per-second tps (its --progress) and the totals."""

    progress: list[tuple[float, float]]  # (seconds since start, tps over the second before)
    tps: float
    transactions: int
    failed: int
    latency_avg_ms: float | None

    def steady_tps(self) -> float:
        """tps past the first second (connecting, pinning); the total tps without progress."""
        later = [tps for at, tps in self.progress if at > SETTLED_AT + 0.5]
        return sum(later) / len(later) if later else self.tps


def _number(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1) if found else None


def parse_pgbench(stdout: str, stderr: str) -> PgbenchFigures:
    """pgbench's figures from its output (totals on stdout, progress lines on stderr)."""
    tps = _number(r"^tps = ([\d.]+)", stdout)
    transactions = _number(r"^number of transactions actually processed: (\d+)", stdout)
    if tps is None or transactions is None:
        raise StoreCeilingError(f"unreadable pgbench output: {(stdout + stderr)[-400:]!r}")
    latency = _number(r"^latency average = ([\d.]+) ms", stdout)
    return PgbenchFigures(
        progress=[(float(at), float(rate)) for at, rate in _PROGRESS.findall(stderr)],
        tps=float(tps), transactions=int(transactions),
        failed=int(_number(r"^number of failed transactions: (\d+)", stdout) or 0),
        latency_avg_ms=float(latency) if latency is not None else None)


async def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=STORE_TIMEOUT)
    try:
        return list(await conn.fetch(query, *args, timeout=STORE_TIMEOUT))
    finally:
        await conn.close()


def sql(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one statement on a connection of its own."""
    return run_async(_fetch(url, query, *args))


class BackendWatch:
    """pgbench's backends: found by application_name, pinned, their CPU over a window."""

    def __init__(self, url: str, name: str, clients: int, plan: CpuPlan, seconds: int) -> None:
        self.url, self.name, self.clients, self.plan = url, name, clients, plan
        self.seconds = seconds
        self.is_pinned = False
        self.cpu_s = 0.0
        self.window_s = 0.0

    def _pids(self) -> list[int]:
        rows = sql(self.url, "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                   self.name)
        return [int(row[0]) for row in rows]

    def _cpu(self, pids: list[int]) -> float:
        try:
            return sum(process_cpu_s(pid) for pid in pids)
        except (psutil.Error, OSError) as exc:
            raise StoreCeilingError(f"a pgbench backend ended mid-run: {exc}") from None

    def __call__(self, _pgbench_pid: int) -> None:
        """Watch one pgbench run; returns before pgbench ends."""
        launched = time.monotonic()
        pids = self._pids()
        while len(pids) < self.clients and time.monotonic() < launched + CONNECT_WITHIN:
            time.sleep(0.05)
            pids = self._pids()
        if len(pids) < self.clients:
            raise StoreCeilingError(f"pgbench opened {len(pids)} of {self.clients} connections")
        if self.plan.is_pinned:
            try:
                for pid in pids:
                    os.sched_setaffinity(pid, self.plan.store_cpus)
                self.is_pinned = True
            except OSError:  # not our processes, and no right to place them: unpinned
                self.is_pinned = False
        time.sleep(max(0.0, launched + SETTLED_AT - time.monotonic()))
        started, before = time.monotonic(), self._cpu(pids)
        time.sleep(max(0.0, launched + self.seconds - ENDS_BEFORE - time.monotonic()))
        self.cpu_s, self.window_s = self._cpu(pids) - before, time.monotonic() - started


def _pgbench(config: StoreCeilingConfig, plan: CpuPlan, script: Path, seconds: int
             ) -> dict[str, Any]:
    clients, threads = config.postgres_clients, min(len(plan.client_cpus),
                                                    config.postgres_clients)
    name = f"authbench-store-{secrets.token_hex(4)}"
    watch = BackendWatch(config.postgres_url, name, clients, plan, seconds)
    now = time.time()
    command = ["pgbench", "-n", "-M", "prepared", "-f", str(script), "-c", str(clients),
               "-j", str(threads), "-T", str(seconds), "-P", "1", "-D", f"now={now!r}",
               "-D", f"idle={now + DEFAULTS.session_idle_ttl!r}", config.postgres_url]
    busy_before = cpu_busy()
    done = run_pinned(command, plan.client_cpus, env={**os.environ, "PGAPPNAME": name},
                      on_start=watch)
    busy = busy_shares(busy_before, cpu_busy())
    if done.returncode != 0:
        raise StoreCeilingError(f"pgbench exited with {done.returncode}: "
                                f"{(done.stderr or done.stdout).strip()[-300:]}")
    figures = parse_pgbench(done.stdout, done.stderr)
    if figures.failed:
        raise StoreCeilingError(f"pgbench: {figures.failed} transactions failed")
    tps = figures.steady_tps()
    cores = watch.cpu_s / watch.window_s if watch.window_s else None
    store_cpus = len(plan.store_cpus) if watch.is_pinned else len(busy)
    store_share = cores / store_cpus if cores is not None else None
    client_share = done.cpu_s / done.wall_s / threads
    return {
        "requests": figures.transactions, "seconds": seconds, "ops_per_s": tps,
        "cpu_us_per_op": cores / tps * 1e6 if cores is not None and tps else None,
        "store_cpu_share": round(store_share, 3) if store_share is not None else None,
        "client_cpu_share": round(client_share, 3), "cpu_busy": busy,
        "backends_pinned": watch.is_pinned, "p50_ms": None, "p99_ms": None,
        "latency_avg_ms": figures.latency_avg_ms,
        "limited_by": limited_by(store_share, client_share),
        **disturbance(busy, plan, store_share, client_share, watch.is_pinned),
    }


def _where(url: str) -> str:
    parts = urlsplit(url)  # host, port and database only: the URL may hold a password
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def measure_postgres(config: StoreCeilingConfig, plan: CpuPlan, say: Say) -> dict[str, Any]:
    """Every PostgreSQL operation at saturation in a private schema: the stores.postgres entry."""
    namespace = f"ab_sc_{secrets.token_hex(5)}"
    store = PostgresStore(config.postgres_url, namespace, STORE_TIMEOUT, 2)

    async def load() -> dict[str, Any]:
        await store.open()
        try:
            loaded = await fill(store, config.keys)
        finally:
            await store.close()
        await _fetch(config.postgres_url, f"ANALYZE {namespace}.sessions, {namespace}.blocklist")
        return loaded

    seconds = math.ceil(config.seconds) + 1  # the first second is left out of the figures
    say(f"postgres: schema {namespace} at {_where(config.postgres_url)}, loading "
        f"{config.keys:,} sessions and {config.keys:,} blocklist entries")
    try:
        loaded = run_async(load())
        server = {row[0]: row[1] for row in sql(
            config.postgres_url, "SELECT name, setting FROM pg_settings WHERE name = ANY($1)"
            " OR name = 'server_version'", list(SETTINGS))}
        operations: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="authbench-store-") as folder:
            for name, operation in SQL_OPERATIONS.items():
                operations[name] = _measure_operation(config, plan, Path(folder), operation,
                                                      namespace, seconds, say)
    finally:
        sql(config.postgres_url, f"DROP SCHEMA IF EXISTS {namespace} CASCADE")
    return {
        "server": {"version": server.pop("server_version", "unknown"),
                   "how": f"the given server at {_where(config.postgres_url)}, private schema "
                          "(dropped after)", "settings": server},
        "tool": tool_version("pgbench"), "store_cpus": list(plan.store_cpus),
        "client_cpus": list(plan.client_cpus),
        "is_pinned": all(r["backends_pinned"] for op in operations.values()
                         for r in op["repeats"]),
        "loaded": loaded, "operations": operations,
    }


def _measure_operation(config: StoreCeilingConfig, plan: CpuPlan, folder: Path,
                       operation: SqlOperation, namespace: str, seconds: int, say: Say
                       ) -> dict[str, Any]:
    script = folder / f"{operation.name}.sql"
    text = operation.script(namespace, config.keys, DEFAULTS.seed_users)
    script.write_text(text)
    _pgbench(config, plan, script, 2)  # warm-up: caches, plans; not kept
    repeats = []
    for index in range(config.repeats):
        row = _pgbench(config, plan, script, seconds)
        repeats.append(row)
        say(f"  postgres {operation.name} #{index + 1}: {row['ops_per_s']:,.0f} ops/s, "
            f"{row['cpu_us_per_op'] or 0:.1f} CPU µs/op, backends CPU "
            f"{row['store_cpu_share'] or 0:.0%}, pgbench CPU {row['client_cpu_share']:.0%} "
            f"({row['limited_by']}){DISTURBED_NOTE if row['is_disturbed'] else ''}")
    return summarize({"description": operation.description,
                      "command": text.strip().splitlines()[-1],
                      "script": text, "replies": operation.replies,
                      "clients": config.postgres_clients, "seconds": config.seconds}, repeats,
                     cores=len(plan.store_cpus) if all(r["backends_pinned"] for r in repeats)
                     else None)
