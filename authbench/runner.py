"""The suite runner: for each cell, start the topology, seed, verify, load, measure, keep."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from authbench.haproxy import haproxy_path
from authbench.launcher import TargetFailed
from authbench.locustrun import run_locust
from authbench.metrics import NodeSampler, counter_delta, store_counters
from authbench.ports import LOOPBACK
from authbench.progress import Progress
from authbench.rundir import RunDir, cell_folder_name, now_iso
from authbench.suite import Cell, Suite
from authbench.topology import Topology
from authbench.verify import verify_target
from targets.keys import generate_key, write_key
from targets.settings import DEFAULT_STORE_URLS, Settings

if TYPE_CHECKING:
    from authbench.revocationbench import RevocationBenchConfig

SEED_USERS = 1000
STORE_TIMEOUT = "1.0"  # seconds; generous under heavy load, still fails closed


@dataclass
class RunOptions:
    """How to run a suite (not what: that is the suite)."""

    results: Path = Path("results")
    redis_url: str = DEFAULT_STORE_URLS["redis"]
    postgres_url: str = DEFAULT_STORE_URLS["postgres"]
    external_workers: int = 0
    master_bind_host: str = LOOPBACK
    master_bind_port: int = 5557  # fixed, so workers started elsewhere can find the master
    use_haproxy: bool = True
    out: TextIO | None = None
    notes: list[str] = field(default_factory=list)
    revocation_bench: RevocationBenchConfig | None = None  # the extra's sizes; None: defaults

    def store_url(self, store: str) -> str:
        return self.redis_url if store == "redis" else self.postgres_url


RECORDED_OPTIONS = ("redis_url", "postgres_url", "external_workers", "master_bind_host",
                    "master_bind_port", "use_haproxy")


def recorded_options(options: RunOptions) -> dict[str, Any]:
    """The options a resumed run must reuse, as metadata.json keeps them."""
    return {name: getattr(options, name) for name in RECORDED_OPTIONS}


def restore_options(options: RunOptions, recorded: dict[str, Any]) -> list[str]:
    """Put a run's recorded options back; return a line per value that differed."""
    changed = []
    for name in RECORDED_OPTIONS:
        if name in recorded and getattr(options, name) != recorded[name]:
            changed.append(f"{name}: using the run's {recorded[name]!r}, "
                           f"not {getattr(options, name)!r}")
            setattr(options, name, recorded[name])
    return changed


def service_answers(url: str, default_port: int) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or LOOPBACK, parts.port or default_port),
                                      timeout=1.0):
            return True
    except OSError:
        return False


def available_services(options: RunOptions) -> list[str]:
    """The shared stores that answer right now."""
    found = []
    if service_answers(options.redis_url, 6379):
        found.append("redis")
    if service_answers(options.postgres_url, 5432):
        found.append("postgres")
    return found


def plan(suite: Suite) -> list[tuple[str, Cell, int]]:
    """(folder name, cell, repeat) in run order: repeats interleaved, cell by cell."""
    order: list[tuple[str, Cell, int]] = []
    for repeat in range(1, suite.repeats + 1):
        for cell in suite.cells:
            order.append((cell_folder_name(len(order) + 1, cell, repeat), cell, repeat))
    return order


def cell_seconds(cell: Cell) -> float:
    """A rough wall-clock estimate of one cell, for the time-left figure."""
    return cell.warmup + cell.duration + 4 + 2 * cell.nodes + cell.scale / 50_000


def namespace_for(run: RunDir, index: int) -> str:
    """A store namespace (Redis prefix, PostgreSQL schema) private to one cell."""
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
    from targets.stores import make_store

    store = make_store(Settings.from_env(env))
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


def seed_shared_store(env: dict[str, str], count: int) -> float:
    """The load phase: bulk-seed a shared store; return the seconds it took."""
    from targets.seeding import seed_sessions

    settings = Settings.from_env(env)
    started = time.perf_counter()
    asyncio.run(_with_store(env, lambda store: seed_sessions(store, count, settings)))
    return time.perf_counter() - started


def drop_namespace(env: dict[str, str]) -> None:
    """Remove what the cell left in a shared store."""
    asyncio.run(_with_store(env, lambda store: store.discard()))


class CellFailed(Exception):
    """The cell could not be measured; the message is the reason kept in cell.json."""


def run_cell(run: RunDir, index: int, name: str, cell: Cell, options: RunOptions,
             progress: Progress) -> dict[str, Any]:
    """Run one cell into its scratch folder and move it into place; return its record."""
    folder = run.start_cell(name)
    record: dict[str, Any] = {"name": name, "cell": cell.as_dict(), "started": now_iso(),
                              "status": "failed", "reason": ""}
    namespace = namespace_for(run, index)
    keys = shared_keys(run, cell.alg) if cell.mode in ("jwt", "hybrid") else None
    env = target_env(cell, namespace, options.store_url(cell.store), keys)
    record["target_env"] = env
    shared = cell.store != "memory" and cell.mode != "none"
    try:
        if shared:
            drop_namespace(env)
            if cell.scale:
                progress.note(f"seeding {cell.scale:,} sessions into {cell.store}")
                record["seed_seconds"] = round(seed_shared_store(env, cell.scale), 3)
        with Topology(env, cell.nodes, folder, cell.balance, options.use_haproxy) as topology:
            record["topology"] = topology.describe()
            checks = [verify_target(url) for url in topology.node_urls]
            record["verify"] = [c.as_dict() for c in checks]
            failed = [c for c in checks if not c.is_passed]
            if failed:
                raise CellFailed(f"verification failed on {failed[0].url}: {failed[0].reason}")
            before = store_counters(cell.store, options.store_url(cell.store), namespace)
            sampler = NodeSampler([t.pid for t in topology.targets])
            sampler.start(delay=cell.warmup)
            progress.measuring(cell.warmup + cell.duration)
            try:
                outcome = run_locust(
                    cell, topology.entry_url, folder,
                    nodes=topology.node_urls if topology.kind == "client-side" else None,
                    node_urls=topology.node_urls,
                    seed_users=SEED_USERS, external_workers=options.external_workers,
                    master_bind_host=options.master_bind_host,
                    master_bind_port=options.master_bind_port,
                )
            finally:  # also on Ctrl-C or an error: no sampler or progress bar left running
                progress.measured()
                record["nodes"] = sampler.stop()
            after = store_counters(cell.store, options.store_url(cell.store), namespace)
            record["store"] = counter_delta(before, after) if before or after else {}
            record["locust"] = {"exit_code": outcome.exit_code,
                                "cpu_warnings": outcome.cpu_warnings,
                                "command": outcome.command}
            dead = topology.dead_nodes()
            if dead:
                raise CellFailed("target died during the cell: " + " | ".join(dead))
            if outcome.exit_code != 0:
                raise CellFailed(f"locust exited with {outcome.exit_code}: {outcome.log_tail}")
            if not list(folder.glob("hdr-*.json")):
                if not options.external_workers:
                    raise CellFailed(f"locust wrote no latency histograms: {outcome.log_tail}")
                record.setdefault("warnings", []).append(
                    "latency histograms were written on the external workers' hosts")
        record["status"] = "ok"
    except (CellFailed, TargetFailed) as exc:
        record["reason"] = str(exc)
    except Exception as exc:  # one broken cell never stops the suite (Ctrl-C still does)
        record["reason"] = f"{type(exc).__name__}: {exc}"
    finally:
        if shared:
            try:
                drop_namespace(env)
            except Exception as exc:
                record.setdefault("warnings", []).append(f"store clean-up failed: {exc}")
    record["ended"] = now_iso()
    final = run.cells / name
    if "locust" in record:  # the command ran in the scratch folder: name the final one
        record["locust"]["command"] = [part.replace(str(folder), str(final))
                                       for part in record["locust"]["command"]]
    run.finish_cell(folder, name, record)
    return record


EXTRA_FILES = {"revocation-storage": "revocation.json"}


def run_extra(run: RunDir, extra: str, options: RunOptions, progress: Progress) -> None:
    """A suite's extra measurement, once, into the run folder (kept when resumed)."""
    target = run.path / EXTRA_FILES[extra]
    if target.exists():
        progress.note(f"{extra}: already measured ({target.name})")
        return
    from authbench.revocationbench import (
        RevocationBenchConfig,
        run_revocation_bench,
        write_revocation_json,
    )

    progress.note(f"{extra}: blocklist storage and logout-everywhere cost "
                  "(authbench bench-revocation)")
    try:
        config = options.revocation_bench or RevocationBenchConfig()
        config = replace(config, redis_url=options.redis_url, postgres_url=options.postgres_url)
        result = run_revocation_bench(config, out=progress.note)
    except Exception as exc:  # the cells are measured: a failed extra is a note, not a crash
        progress.note(f"{extra} failed: {type(exc).__name__}: {exc}")
        run.update_metadata(extras_failed={extra: f"{type(exc).__name__}: {exc}"})
        return
    write_revocation_json(run.path, result)
    failed = run.metadata().get("extras_failed", {})
    if extra in failed:  # measured now, on a resume: the earlier failure no longer holds
        run.update_metadata(extras_failed={k: v for k, v in failed.items() if k != extra})


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; carries the run folder so the CLI can say how to resume."""

    def __init__(self, run: RunDir) -> None:
        super().__init__(str(run.path))
        self.run = run


def run_suite(suite: Suite, options: RunOptions, resume: RunDir | None = None) -> RunDir:
    """Run every cell not yet finished; Ctrl-C keeps finished cells (resume later)."""
    order = plan(suite)
    if resume is None:
        run = RunDir.create(options.results, suite, {
            "topology": {"load_balancer": "haproxy" if options.use_haproxy and haproxy_path()
                         else "client-side", "external_workers": options.external_workers},
            "notes": options.notes,
            "options": recorded_options(options),
        })
    else:
        run = resume
        run.drop_partials()
        run.update_metadata(status="running", resumed=now_iso())
    done = run.finished_cells()
    todo = [(i, item) for i, item in enumerate(order, 1) if item[0] not in done]
    progress = Progress(len(order), len(done), sum(cell_seconds(c) for _, (_, c, _) in todo),
                        options.out)
    progress.note(f"run folder: {run.path}")
    try:
        for index, (name, cell, _repeat) in todo:
            progress.start_cell(name, cell_seconds(cell))
            record = run_cell(run, index, name, cell, options, progress)
            progress.end_cell(record["status"], record.get("reason", ""))
        for extra in suite.extras:
            run_extra(run, extra, options, progress)
    except KeyboardInterrupt:
        run.drop_partials()
        run.update_metadata(status="interrupted", ended=now_iso())
        raise RunInterrupted(run) from None
    except Exception as exc:
        run.drop_partials()
        run.update_metadata(status="crashed", ended=now_iso(), error=f"{type(exc).__name__}: {exc}")
        raise
    run.update_metadata(status="complete", ended=now_iso())
    return run
