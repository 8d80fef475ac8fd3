"""One configuration's processes: its store namespace, target nodes and Locust.

A rig is brought up in phases: the load phase (seed the store, start and verify
every node, start Locust and let every user log in, with the targets free to use
every core), then placement (targets pinned to their CPUs, the store's unloaded
round trip timed). Then it measures windows, one per cell folder, as many as the
runner asks for: one for a cell of its own, or one per repeat when the runner keeps
every configuration up and interleaves their windows.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authbench.infra.netdelay import DelayLine
from authbench.infra.ports import LOOPBACK
from authbench.infra.services import DEFAULT_PORTS
from authbench.infra.topology import Topology
from authbench.run.cell import Cell
from authbench.run.faults import fault_injector
from authbench.run.locustrun import LocustFailed, LocustProcesses, ready_timeout
from authbench.run.metrics import WindowSampler, counter_delta, store_counters, store_cpu_source
from authbench.run.placement import Placement
from authbench.run.rundir import RunDir
from authbench.run.verify import verify_target
from targets.app import make_codec
from targets.keys import generate_key, write_key
from targets.seeding import seed_sessions
from targets.settings import Settings
from targets.stores import make_store

SEED_USERS = 1000
STORE_TIMEOUT = "1.0"  # seconds; generous under heavy load, still fails closed
RTT_CALLS = 200  # sequential lookups of a missing session, to time the store unloaded
# A delay line starts in well under a second, but a windows suite starts dozens of
# processes at once (offbox: 21 delay lines, 26 targets, their Locusts).
READY_SECONDS = 60.0


class CellFailed(Exception):
    """The cell could not be measured; the message is the reason kept in cell.json."""


def namespace_for(run: RunDir, index: int) -> str:
    """A store namespace (Redis prefix, PostgreSQL schema) private to one configuration."""
    digest = hashlib.sha256(run.path.name.encode()).hexdigest()[:8]
    return f"ab_{digest}_{index:03d}"


def target_env(cell: Cell, namespace: str, store_url: str, keys_dir: Path | None) -> dict[str, str]:
    """The environment of every node of a cell: identical, so nodes are interchangeable."""
    env = {
        "AUTH_MODE": cell.mode,
        "STORE": cell.store,
        "STORE_NAMESPACE": namespace,
        "STORE_TIMEOUT": STORE_TIMEOUT,
        "JWT_ALG": cell.alg,
        "JWT_LIB": cell.lib,
        "JWT_REVOCATION": cell.revocation,
        "VERIFY_CACHE": str(cell.verify_cache),
        "SEED_USERS": str(SEED_USERS),
    }
    if cell.access_ttl:
        env["ACCESS_TTL"] = str(cell.access_ttl)
    if cell.store != "memory":
        env["STORE_URL"] = store_url
    elif cell.scale:
        env["SEED_SESSIONS"] = str(cell.scale)  # each process fills its own memory store
    if keys_dir is not None:
        env["JWT_KEYS_DIR"] = str(keys_dir)
    return env


def shared_keys(run: RunDir, alg: str) -> Path:
    """One key per algorithm per run, on disk, so every node verifies every token."""
    folder = run.path / "keys" / alg
    if not folder.is_dir():
        write_key(folder, alg, generate_key(alg))
    return folder


async def _with_store(env: dict[str, str], action: Callable[[Any], Any]) -> Any:
    store = make_store(Settings.from_env(env))
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


def seed_shared_store(env: dict[str, str], count: int) -> float:
    """The load phase: bulk-seed a shared store; return the seconds it took."""
    settings = Settings.from_env(env)
    started = time.perf_counter()
    asyncio.run(_with_store(env, lambda store: seed_sessions(store, count, settings)))
    return time.perf_counter() - started


def drop_namespace(env: dict[str, str]) -> None:
    """Remove what the cell left in a shared store."""
    asyncio.run(_with_store(env, lambda store: store.discard()))


def store_round_trip_us(env: dict[str, str]) -> float:
    """Median µs of one session lookup (a miss) on an idle store, from this process."""
    async def time_lookups(store: Any) -> float:
        samples = []
        for index in range(RTT_CALLS):
            started = time.perf_counter()
            await store.get_session(f"rtt-probe-{index}", time.time())
            samples.append((time.perf_counter() - started) * 1e6)
        return statistics.median(samples)

    result: float = asyncio.run(_with_store(env, time_lookups))
    return result


def sign_cost_us(env: dict[str, str], calls: int = 100) -> float:
    """Median µs to issue one access token with the targets' own codec and keys, in-process
    (the sign cost every login pays; the KDF is the same in every mode and left out)."""
    codec = make_codec(Settings.from_env(env))
    codec.issue("user1")  # first call: lazy set-up inside the library
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        codec.issue("user1")
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


class Rig:
    """A configuration's namespace, nodes and Locust, up from `up()` to `down()`."""

    def __init__(self, run: RunDir, index: int, cell: Cell, store_url: str, folder: Path,
                 placement: Placement, run_time: float, use_haproxy: bool = True,
                 external_workers: int = 0, master_bind_host: str = "127.0.0.1",
                 master_bind_port: int = 5557) -> None:
        self.cell = cell
        self.folder = folder
        self.placement = placement
        self.store_url = store_url
        self.namespace = namespace_for(run, index)
        self.faults = fault_injector(cell, folder, store_url, self.namespace)
        if self.faults is not None:
            store_url = self.store_url = self.faults.store_url  # e.g. a Redis it may break
        keys = shared_keys(run, cell.alg) if cell.mode in ("jwt", "hybrid") else None
        self.env = target_env(cell, self.namespace, store_url, keys)
        self.direct_env = dict(self.env)  # the harness's own store calls skip any delay line
        self.is_shared = cell.store != "memory" and cell.mode != "none"
        self.use_haproxy = use_haproxy
        self.topology = Topology(self.env, cell.nodes, folder, cell.balance, use_haproxy)
        self.delay: DelayLine | None = None
        self.locust: LocustProcesses | None = None
        self.run_time = run_time
        self.external_workers = external_workers
        self.master_bind = (master_bind_host, master_bind_port)
        self.facts: dict[str, Any] = {"target_env": self.env,
                                      "placement": placement.describe()}
        self.failure: str | None = None
        self._is_up = False

    def up(self, note: Callable[[str], None] = lambda text: None) -> None:
        """The load phase: seed, start, verify, log every user in. A failure is kept in
        `failure` (the reason its cells record), never raised."""
        try:
            if self.faults is not None:
                self.faults.start()
            if self.cell.is_delayed:
                self._start_delay()
            if self.is_shared:
                drop_namespace(self.direct_env)
                if self.cell.scale:
                    note(f"seeding {self.cell.scale:,} sessions into {self.cell.store}")
                    self.facts["seed_seconds"] = round(seed_shared_store(
                        self.direct_env, self.cell.scale), 3)
            self._is_up = True
            self.topology.start()
            self.facts["topology"] = self.topology.describe()
            checks = [verify_target(url) for url in self.topology.node_urls]
            self.facts["verify"] = [c.as_dict() for c in checks]
            failed = [c for c in checks if not c.is_passed]
            if failed:
                raise CellFailed(f"verification failed on {failed[0].url}: {failed[0].reason}")
            self.locust = LocustProcesses(
                self.cell, self.topology.entry_url, self.folder, self.run_time,
                nodes=self.topology.node_urls if self.topology.kind == "client-side" else None,
                node_urls=self.topology.node_urls, seed_users=SEED_USERS,
                external_workers=self.external_workers, master_bind_host=self.master_bind[0],
                master_bind_port=self.master_bind[1], on_spawn=self.placement.pin_generator)
            self.locust.start()
            self.facts["locust"] = {"command": self.locust.command}
            started = time.monotonic()
            self.locust.wait_ready(ready_timeout(self.cell), self._dead_targets)
            note(f"{self.cell.key}: verified, {self.cell.users} users logged in "
                 f"({time.monotonic() - started:.1f} s)")
        except (CellFailed, LocustFailed) as exc:
            self.failure = str(exc)
        except Exception as exc:  # a target that never came up, a store that refused
            self.failure = f"{type(exc).__name__}: {exc}"

    def _start_delay(self) -> None:
        """Put the store `store_rtt_ms` away: a delay line the targets reach it through
        (the harness's own store calls, its counters and CPU, go direct)."""
        address = urlsplit(self.store_url)
        host = address.hostname or LOOPBACK
        port = address.port or DEFAULT_PORTS[self.cell.store]
        self.delay = DelayLine(host, port, self.cell.store_rtt_ms,
                               log_path=self.folder / "netdelay.log")
        self.delay.start(timeout=READY_SECONDS)
        self.env["STORE_URL"] = self.delay.proxied_url(self.store_url)
        # Nothing has started yet: the nodes get the environment that goes through it.
        self.topology = Topology(self.env, self.cell.nodes, self.folder, self.cell.balance,
                                 self.use_haproxy)
        self.facts["store_delay"] = {"rtt_ms": self.cell.store_rtt_ms,
                                     "listen": f"{self.delay.host}:{self.delay.port}",
                                     "upstream": f"{host}:{port}", "pid": self.delay.pid}

    def settle(self) -> None:
        """Once every rig's load phase is over: pin the targets, and time on an idle machine
        what the windows cannot (the store's round trip, the codec's sign cost)."""
        if self.failure is not None:
            return
        try:
            for pid in self._target_pids():
                self.placement.pin_target(pid)
            if self.is_shared:  # as the targets see it: through the delay line, if any
                self.facts["store_rtt_us"] = round(store_round_trip_us(self.env), 1)
            if self.cell.mode in ("jwt", "hybrid"):
                self.facts["sign_us"] = round(sign_cost_us(self.env), 1)
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"

    def _target_pids(self) -> list[int]:
        pids = [t.pid for t in self.topology.targets if t.process is not None]
        if self.topology.haproxy is not None:
            pids.append(self.topology.haproxy.pid)
        return pids

    def _counters(self) -> dict[str, Any]:
        """The store's counters (memory used, commands) for a window's before and after."""
        return store_counters(self.cell.store, self.store_url, self.namespace)

    def _cpu_pids(self) -> list[int]:
        """The processes whose CPU is the target's."""
        return [t.pid for t in self.topology.targets]

    def _dead_targets(self) -> str | None:
        dead = self.topology.dead_nodes()
        return "target died during the cell: " + " | ".join(dead) if dead else None

    def _why_broken(self) -> str | None:
        if (dead := self._dead_targets()) is not None:
            return dead
        if self.locust is not None and (why := self.locust.dead()) is not None:
            return why
        return None

    def measure(self, folder: Path, warmup: float, duration: float,
                rate: float = 0.0) -> dict[str, Any]:
        """One window into folder (open-model at `rate` req/s, or a closed loop): what
        cell.json keeps of it. CellFailed if it cannot be."""
        if self.failure is not None:
            raise CellFailed(self.failure)
        assert self.locust is not None
        if (why := self._why_broken()) is not None:
            self.failure = why
            raise CellFailed(why)
        before = self._counters()
        window = self.locust.announce(folder, warmup, duration, rate)
        store_cpu = store_cpu_source(self.cell.store, self.store_url) if self.is_shared \
            else None
        sampler = WindowSampler(window.measure_from, window.measure_until,
                                self._cpu_pids(), self.locust.pids,
                                store_cpu, [self.delay.pid] if self.delay else None).start()
        try:
            fault = None if self.faults is None else self.faults.inject(
                window, self.topology.targets, self.placement.pin_target)
            usage = sampler.finish()
            files = self.locust.collect(window)
        except BaseException:
            sampler.finish(cancel=True)  # Ctrl-C: no sampler thread left waiting
            raise
        finally:
            if store_cpu is not None:
                store_cpu.close()
        after = self._counters()
        if (why := self._why_broken()) is not None:
            self.failure = why
            raise CellFailed(why)
        missing = self.locust.missing_workers(window, files)
        if not files and not missing:
            raise CellFailed(f"locust wrote no latency histograms: {self.locust.log_tail()}")
        usage["generator"] += self.locust.reported_generator(files)  # workers we cannot sample
        record = {**self.facts, **usage,
                  "store": counter_delta(before, after) if before or after else {},
                  "window": {"seq": window.seq, "warmup": warmup, "planned_seconds": duration,
                             "measure_from": window.measure_from,
                             "measure_until": window.measure_until, "rate": rate}}
        if missing:  # its histograms are from fewer workers than it had: short
            record["window"].update(is_short=True, missing_workers=missing)
        if fault is not None:
            record["fault"] = fault
        return record

    def down(self) -> dict[str, Any]:
        """Stop Locust, the nodes and the balancer; clear the store namespace."""
        outcome: dict[str, Any] = {}
        warnings = []
        if self.locust is not None:
            result = self.locust.stop()
            outcome = {"exit_code": result.exit_code, "cpu_warnings": result.cpu_warnings,
                       "command": result.command}
            self.locust = None
        self.topology.stop()
        if self.delay is not None:
            self.delay.stop()
            self.delay = None
        if self.is_shared and self._is_up:
            try:
                drop_namespace(self.direct_env)
            except Exception as exc:
                warnings.append(f"store clean-up failed: {exc}")
        self._is_up = False
        if self.faults is not None:
            self.faults.close()
        return {"locust": outcome, "warnings": warnings}
