"""`authbench bench-revocation`: what revocation costs in storage, and "log out everywhere".

Three measurements, each in a private namespace dropped afterwards:

- growth: the JWT blocklist filled through each store's bulk path up to a few sizes;
  at each, the entries the store counts, the bytes it takes and the cost of a check;
- steady state: logouts at a fixed rate into Redis, each entry living until its
  token's exp; the entry count plateaus at rate x mean remaining life (Little's law);
- logout-all: deleting a user's k sessions against the JWT per-user cutoff (one write).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import statistics
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from authbench.infra.services import available_services
from authbench.run.rundir import collect_metadata, write_json
from authbench.run.runner import SuiteExtra
from targets.settings import DEFAULT_STORE_URLS
from targets.stores import MemoryStore, PostgresStore, RedisStore, Store

SCHEMA_VERSION = 1
RESULT_FILE = "revocation.json"
STORES = ("memory", "redis", "postgres")
STORE_TIMEOUT = 30.0  # one store call; counting a million keys is not a request
POOL_SIZE = 4
GROWTH_EXPIRY = 3600.0  # growth entries must outlive the measurement
CHECK_WARMUP = 10
SAMPLE_EVERY = 0.5
PACE_EVERY = 0.02  # seconds between steady-state insert batches
MAX_BATCH = 5_000  # steady-state inserts per batch, however far behind the pacing is
SCAN_DEADLINE = 120.0  # seconds to count a namespace's keys before giving up
BACKGROUND_SESSIONS = 10_000  # other users' sessions, so logout-all is not on an empty store
BACKGROUND_USERS = 1_000
CUTOFF_REPS = 20
SESSION_IDLE_TTL, SESSION_ABSOLUTE_TTL = 1800, 43200

COUNT_BLOCKLIST = "SELECT count(*) FROM {ns}.blocklist"  # ns: ours, ab_rb_<hex>
UNAVAILABLE = (*RedisStore.unavailable_errors, *PostgresStore.unavailable_errors)
NOT_A_RUN = "{folder}: not an authbench run (no metadata.json); leave out --into for a new folder"
BYTES_METHOD = {
    "memory": "tracemalloc in a separate pass: Python heap blocks the store still holds "
              "(jti strings, tuples, dict and heap), net of the baseline before the first insert",
    "redis": "INFO memory used_memory minus its value right before the first insert "
             "(the whole server: other clients' keys add noise)",
    "postgres": "pg_total_relation_size of <ns>.blocklist: table plus primary-key index",
}
NOTES = [
    "Redis memory is per server: used_memory counts every database and client, so other "
    "keys written to the same Redis during the run add noise; the baseline is measured "
    "right before the first insert.",
    "The memory store's bytes come from a separate pass under tracemalloc (it slows "
    "allocation), so its insert seconds and check latencies are measured without it.",
    "Steady state: each logout blocklists its token until exp, a uniform random "
    "remaining life in (0, T], so on average T/2; Little's law gives R*T/2 entries.",
    "Entries are jtis as the targets issue them (22 characters); in Redis each is a key "
    "'<ns>:bl:<jti>' (42 bytes with this run's ab_rb_<hex> namespace) with value '1' and "
    "a TTL, in PostgreSQL a row (jti, expires) with its primary-key index entry.",
    "Hybrid mode uses the same two operations: its refresh families are sessions "
    "(delete_user_sessions) and its access tokens are cut off by set_user_cutoff.",
    f"Logout-all runs with {BACKGROUND_SESSIONS:,} sessions of {BACKGROUND_USERS:,} other "
    "users in the store, so the deletion is not on an empty table.",
]

T = TypeVar("T")
Say = Callable[[str], None]


class BenchError(RuntimeError):
    """A store gave an answer that makes the measurement meaningless."""


@dataclass(frozen=True)
class RevocationBenchConfig:
    """What `bench-revocation` measures; the defaults are the CLI's."""

    stores: tuple[str, ...] = STORES
    redis_url: str = DEFAULT_STORE_URLS["redis"]
    postgres_url: str = DEFAULT_STORE_URLS["postgres"]
    max_entries: int = 1_000_000
    checkpoints: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    logout_rate: float = 2000.0
    token_ttl: float = 6.0
    steady_seconds: float | None = None  # None: 3 x token_ttl
    k: tuple[int, ...] = (1, 10, 100, 1000)
    reps: int | None = None  # None: 20 for k <= 100, 5 above
    checks: int = 200

    def growth_checkpoints(self) -> list[int]:
        """The checkpoints capped at max_entries, ascending, without repeats."""
        return sorted({min(c, self.max_entries) for c in self.checkpoints if c > 0})

    def steady_duration(self) -> float:
        return 3 * self.token_ttl if self.steady_seconds is None else self.steady_seconds

    def reps_for(self, k: int) -> int:
        if self.reps is not None:
            return self.reps
        return 20 if k <= 100 else 5


def new_jti() -> str:
    """A jti as the targets issue them."""
    return secrets.token_urlsafe(16)


def _namespace() -> str:
    return f"ab_rb_{secrets.token_hex(5)}"


def raise_if_cancelled() -> None:
    """Honour a cancellation (Ctrl-C) that library code swallowed.

    Python 3.11's asyncio.wait_for drops a cancellation that lands just as its inner
    read completes (the Redis bulk loader reads in such a loop); the task still counts
    the request, so each step checks it and the run stops, dropping its namespaces.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# --- stores and what they can tell about themselves -----------------------------------

@dataclass
class _Meter:
    """A store in a private namespace, with its entry count and its bytes."""

    kind: str
    store: Store
    namespace: str
    postgres_url: str = ""
    memory_bytes: list[int] = field(default_factory=list)

    async def entries(self) -> int:
        store = self.store
        if isinstance(store, RedisStore):
            return len(await _redis_keys(store, f"{self.namespace}:bl:*"))
        if isinstance(store, PostgresStore):
            return int(await self._sql(COUNT_BLOCKLIST.format(ns=self.namespace)))
        assert isinstance(store, MemoryStore)
        return store.blocklist_size()

    async def used_bytes(self) -> int:
        """Redis and PostgreSQL now; the memory store's bytes come from its own pass."""
        if isinstance(self.store, RedisStore):
            info = (await self.store.client.execute("INFO", "memory")).decode()
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            return int(fields["used_memory"])
        if isinstance(self.store, PostgresStore):
            return int(await self._sql("SELECT pg_total_relation_size($1::regclass)",
                                       f"{self.namespace}.blocklist"))
        raise BenchError("the memory store's bytes are measured under tracemalloc")

    async def _sql(self, query: str, *args: object) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.postgres_url, timeout=STORE_TIMEOUT)
        try:
            return await conn.fetchval(query, *args, timeout=STORE_TIMEOUT)
        finally:
            await conn.close()


async def _redis_keys(store: RedisStore, pattern: str) -> set[bytes]:
    # A set: SCAN may return a key twice when the table is resized between calls.
    found: set[bytes] = set()
    cursor, deadline = b"0", time.monotonic() + SCAN_DEADLINE
    while time.monotonic() < deadline:
        cursor, keys = await store.client.execute("SCAN", cursor, "MATCH", pattern,
                                                  "COUNT", 10_000)
        found.update(keys)
        if cursor == b"0":
            return found
    raise BenchError(f"counting {pattern} took more than {SCAN_DEADLINE:.0f} s")


def _make_store(kind: str, config: RevocationBenchConfig, namespace: str) -> Store:
    if kind == "redis":
        return RedisStore(config.redis_url, namespace, STORE_TIMEOUT, POOL_SIZE)
    if kind == "postgres":
        return PostgresStore(config.postgres_url, namespace, STORE_TIMEOUT, POOL_SIZE)
    return MemoryStore()


@contextlib.asynccontextmanager
async def private_store(kind: str, config: RevocationBenchConfig) -> AsyncIterator[_Meter]:
    """An opened store in a namespace of its own, dropped on the way out (errors, Ctrl-C)."""
    namespace = _namespace()
    store = _make_store(kind, config, namespace)
    try:
        await store.open()
    except store.unavailable_errors:
        await store.close()
        raise
    try:
        yield _Meter(kind, store, namespace, config.postgres_url)
    finally:
        try:
            await store.discard()
        finally:
            await store.close()


# --- a) growth ------------------------------------------------------------------------

async def _median_check_us(store: Store, jtis: list[str], is_present: bool) -> float:
    """Median µs of revocation_state over jtis; each answer must be the expected one."""
    now = time.time()
    for jti in jtis[:CHECK_WARMUP]:
        await store.revocation_state(jti, "rb-user", now)
    times = []
    for jti in jtis:
        started = time.perf_counter()
        state = await store.revocation_state(jti, "rb-user", now)
        times.append(time.perf_counter() - started)
        if state.is_blocked != is_present:
            raise BenchError(f"{store.kind}: jti {'in' if is_present else 'not in'} the "
                             f"blocklist reported is_blocked={state.is_blocked}")
    return statistics.median(times) * 1e6


async def _memory_bytes(checkpoints: list[int]) -> list[int]:
    """Bytes a MemoryStore holds at each checkpoint, by tracemalloc (a pass of its own)."""
    store = MemoryStore()
    found, inserted = [], 0
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for checkpoint in checkpoints:
            expires = time.time() + GROWTH_EXPIRY
            # A generator, not a list: only what the store keeps stays allocated.
            await store.seed_blocklist((new_jti(), expires)
                                       for _ in range(checkpoint - inserted))
            inserted = checkpoint
            found.append(tracemalloc.get_traced_memory()[0] - baseline)
    finally:
        tracemalloc.stop()
        await store.discard()
    return found


async def measure_growth(meter: _Meter, config: RevocationBenchConfig, say: Say
                         ) -> list[dict[str, Any]]:
    """Fill the blocklist to each checkpoint; entries, bytes and check cost at each."""
    checkpoints = config.growth_checkpoints()
    memory_bytes = await _memory_bytes(checkpoints) if meter.kind == "memory" else []
    baseline = 0 if meter.kind != "redis" else await meter.used_bytes()
    rows: list[dict[str, Any]] = []
    present: list[str] = []
    inserted = 0
    for index, checkpoint in enumerate(checkpoints):
        jtis = [new_jti() for _ in range(checkpoint - inserted)]
        expires = time.time() + GROWTH_EXPIRY
        started = time.perf_counter()
        written = await meter.store.seed_blocklist((jti, expires) for jti in jtis)
        seconds = time.perf_counter() - started
        raise_if_cancelled()
        if written != len(jtis):
            raise BenchError(f"{meter.kind}: seed_blocklist wrote {written} of {len(jtis)}")
        inserted = checkpoint
        present += random.sample(jtis, min(config.checks, len(jtis)))
        del jtis
        entries = await meter.entries()
        used = memory_bytes[index] if memory_bytes else await meter.used_bytes() - baseline
        checked = random.sample(present, min(config.checks, len(present)))
        row = {
            "store": meter.kind, "entries": entries, "inserted": inserted, "bytes": used,
            "bytes_per_entry": used / entries if entries else None,
            "bytes_method": BYTES_METHOD[meter.kind], "insert_seconds": seconds,
            "check_present_us": await _median_check_us(meter.store, checked, True),
            "check_absent_us": await _median_check_us(
                meter.store, [new_jti() for _ in range(config.checks)], False),
        }
        rows.append(row)
        say(f"  growth {meter.kind}: {entries:,} entries, {used / 1e6:,.2f} MB, "
            f"{row['bytes_per_entry'] or 0:,.0f} B/entry, inserted in {seconds:.2f} s, "
            f"check {row['check_present_us']:.1f}/{row['check_absent_us']:.1f} µs")
    return rows


# --- b) steady state ------------------------------------------------------------------

async def measure_steady_state(meter: _Meter, config: RevocationBenchConfig,
                               bytes_per_entry: float | None, say: Say) -> dict[str, Any]:
    """Logouts at rate R, each entry living a uniform (0, T]; sample the entry count."""
    store, rate, ttl = meter.store, config.logout_rate, config.token_ttl
    seconds = config.steady_duration()
    limit = int(rate * seconds)
    samples: list[list[float]] = []
    started = time.perf_counter()

    async def insert() -> int:
        sent = 0
        while sent < limit and (elapsed := time.perf_counter() - started) < seconds:
            due = min(limit, int(rate * elapsed)) - sent
            if due > 0:
                now = time.time()
                batch = [(new_jti(), now + ttl * (1.0 - random.random()))
                         for _ in range(min(due, MAX_BATCH))]
                # The logout path itself: one SET per token, pipelined by the client.
                await asyncio.gather(*(store.block_token(j, e) for j, e in batch))
                sent += len(batch)
            await asyncio.sleep(PACE_EVERY)
            raise_if_cancelled()
        return sent

    async def sample() -> None:
        for index in range(int(seconds / SAMPLE_EVERY) + 1):
            await asyncio.sleep(max(0.0, started + index * SAMPLE_EVERY - time.perf_counter()))
            at = time.perf_counter() - started
            samples.append([round(at, 3), await meter.entries()])

    sent, _ = await asyncio.gather(insert(), sample())
    after = [entries for at, entries in samples if at > ttl]
    plateau = statistics.fmean(after) if after else None
    model = rate * ttl / 2
    result = {
        "store": meter.kind, "rate_per_s": rate, "ttl_s": ttl, "seconds": seconds,
        "inserted": sent, "rate_achieved_per_s": sent / seconds if seconds else None,
        "samples": samples, "plateau_entries": plateau, "model_entries": model,
        "bytes_per_entry": bytes_per_entry,
        "plateau_bytes": plateau * bytes_per_entry if plateau and bytes_per_entry else None
    }
    say(f"  steady state {meter.kind}: {sent:,} logouts in {seconds:.0f} s, plateau "
        f"{plateau or 0:,.0f} entries, model R*T/2 = {model:,.0f}")
    return result


# --- c) logout-all --------------------------------------------------------------------

def _user_sessions(user: str, k: int) -> Iterator[tuple[str, Any]]:
    from targets.seeding import generate_sessions

    for key, record in generate_sessions(k, 1, SESSION_IDLE_TTL, SESSION_ABSOLUTE_TTL):
        yield key, replace(record, user=user)


def _spread(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.stdev(values) if len(values) > 1 else 0.0


async def _timed(call: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    value = await call()
    return (time.perf_counter() - started) * 1000, value


async def measure_logout_all(meter: _Meter, config: RevocationBenchConfig, say: Say
                             ) -> list[dict[str, Any]]:
    """delete_user_sessions over k sessions, and set_user_cutoff, with fresh users each rep."""
    from targets.seeding import generate_sessions

    store = meter.store
    await store.seed_sessions(generate_sessions(BACKGROUND_SESSIONS, BACKGROUND_USERS,
                                                SESSION_IDLE_TTL, SESSION_ABSOLUTE_TTL))
    await store.seed_sessions(_user_sessions("rb-warmup", 1))
    await store.delete_user_sessions("rb-warmup")  # connections open, code paths warm
    raise_if_cancelled()
    rows: list[dict[str, Any]] = []
    for k in config.k:
        times, removed = [], []
        for rep in range(config.reps_for(k)):
            user = f"rb-{k}-{rep}-{secrets.token_hex(3)}"
            await store.seed_sessions(_user_sessions(user, k))
            raise_if_cancelled()
            ms, count = await _timed(partial(store.delete_user_sessions, user))
            times.append(ms)
            removed.append(count)
        median, stdev = _spread(times)
        rows.append({"store": meter.kind, "op": "delete_user_sessions", "k": k,
                     "median_ms": median, "stdev_ms": stdev, "reps": len(times),
                     "removed": min(removed)})
        say(f"  logout-all {meter.kind}: k={k:,} delete_user_sessions {median:.3f} ms "
            f"(removed {min(removed):,})")
    cutoff_reps = config.reps or CUTOFF_REPS
    times = []
    for rep in range(cutoff_reps):
        now = time.time()
        ms, _ = await _timed(partial(store.set_user_cutoff, f"rb-cut-{rep}", now, now + 900))
        times.append(ms)
    median, stdev = _spread(times)
    rows.append({"store": meter.kind, "op": "set_user_cutoff", "k": None, "median_ms": median,
                 "stdev_ms": stdev, "reps": cutoff_reps, "removed": None})
    say(f"  logout-all {meter.kind}: set_user_cutoff {median:.3f} ms")
    return rows


# --- the whole benchmark --------------------------------------------------------------

def _reachable(config: RevocationBenchConfig, notes: list[str], say: Say) -> list[str]:
    shared = [s for s in config.stores if s != "memory"]
    answering = available_services(config.redis_url, config.postgres_url) if shared else []
    kinds = []
    for kind in config.stores:
        if kind == "memory" or kind in answering:
            kinds.append(kind)
        else:
            url = config.redis_url if kind == "redis" else config.postgres_url
            _note(notes, say, f"{kind} not measured: nothing answers at {_where(url)}")
    return kinds


def _where(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)  # host and port only: the URL may hold a password
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _note(notes: list[str], say: Say, text: str) -> None:
    notes.append(text)
    say(f"note: {text}")


async def _bench(config: RevocationBenchConfig, say: Say) -> dict[str, Any]:
    notes = list(NOTES)
    growth: list[dict[str, Any]] = []
    steady: list[dict[str, Any]] = []
    logout: list[dict[str, Any]] = []
    for kind in _reachable(config, notes, say):
        try:
            async with private_store(kind, config) as meter:
                say(f"growth: {kind}, to {config.growth_checkpoints()[-1]:,} entries")
                rows = await measure_growth(meter, config, say)
                growth += rows
            if kind == "redis":
                async with private_store(kind, config) as meter:
                    say(f"steady state: {kind}, {config.logout_rate:,.0f} logouts/s, "
                        f"T = {config.token_ttl:g} s, {config.steady_duration():g} s")
                    per_entry = rows[-1]["bytes_per_entry"] if rows else None
                    steady.append(await measure_steady_state(meter, config, per_entry, say))
            async with private_store(kind, config) as meter:
                say(f"logout-all: {kind}, k = {', '.join(map(str, config.k))}")
                logout += await measure_logout_all(meter, config, say)
        except UNAVAILABLE as exc:
            _note(notes, say, f"{kind} not measured (or only in part): {exc}")
    if "redis" not in {row["store"] for row in growth}:
        _note(notes, say, "steady state not measured: it runs on Redis, which was not measured")
    return {"notes": notes, "growth": growth, "steady_state": steady, "logout_all": logout}


def _event_loop_runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # Windows: the default loop
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)  # the targets' event loop


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    # asyncio.Runner turns Ctrl-C into a cancellation, so every `finally` drops its namespace.
    with _event_loop_runner() as runner:
        return runner.run(coroutine)


def run_revocation_bench(config: RevocationBenchConfig, out: Callable[[str], None] | None = None
                         ) -> dict[str, Any]:
    """Run the three parts on every reachable store; the result as revocation.json holds it."""
    say: Say = out or (lambda line: None)
    started = datetime.now(UTC)
    parts = _run(_bench(config, say))
    resolved = {**asdict(config), "checkpoints": config.growth_checkpoints(),
                "steady_seconds": config.steady_duration(),
                "reps": {str(k): config.reps_for(k) for k in config.k},
                "checks": config.checks, "background_sessions": BACKGROUND_SESSIONS}
    return {"schema_version": SCHEMA_VERSION, "started": started.isoformat(timespec="seconds"),
            "ended": datetime.now(UTC).isoformat(timespec="seconds"), "config": resolved,
            "machine": collect_metadata(), **parts}


def write_revocation_json(folder: Path, result: dict[str, Any]) -> Path:
    """Write revocation.json into folder (atomically); return its path."""
    path = folder / RESULT_FILE
    write_json(path, result)
    return path


def storage_extra(config: RevocationBenchConfig | None = None) -> SuiteExtra:
    """The suites' `revocation-storage` extra: this benchmark on the run's own stores."""

    def measure(folder: Path, store_urls: Mapping[str, str], note: Say) -> None:
        sized = replace(config or RevocationBenchConfig(), redis_url=store_urls["redis"],
                        postgres_url=store_urls["postgres"])
        write_revocation_json(folder, run_revocation_bench(sized, out=note))

    return SuiteExtra(RESULT_FILE, "blocklist storage and logout-everywhere cost "
                      "(authbench bench-revocation)", measure)


# --- the terminal ---------------------------------------------------------------------

def format_result(result: dict[str, Any]) -> list[str]:
    """The result as readable tables."""
    lines = [f"{'store':<9}{'entries':>11}{'MB':>10}{'B/entry':>9}{'insert s':>10}"
             f"{'present µs':>12}{'absent µs':>11}"]
    for r in result["growth"]:
        lines.append(f"{r['store']:<9}{r['entries']:>11,}{r['bytes'] / 1e6:>10.2f}"
                     f"{r['bytes_per_entry'] or 0:>9.0f}{r['insert_seconds']:>10.2f}"
                     f"{r['check_present_us']:>12.1f}{r['check_absent_us']:>11.1f}")
    for s in result["steady_state"]:
        lines += ["", f"steady state ({s['store']}): {s['rate_per_s']:,.0f} logouts/s "
                  f"(achieved {s['rate_achieved_per_s'] or 0:,.0f}), T = {s['ttl_s']:g} s: "
                  f"plateau {s['plateau_entries'] or 0:,.0f} entries, model R*T/2 = "
                  f"{s['model_entries']:,.0f}, ~{(s['plateau_bytes'] or 0) / 1e6:.2f} MB"]
    lines += ["", f"{'store':<9}{'operation':<22}{'k':>6}{'median ms':>11}{'± stdev':>9}"
              f"{'reps':>6}{'removed':>9}"]
    for r in result["logout_all"]:
        k = "-" if r["k"] is None else f"{r['k']:,}"
        removed = "-" if r["removed"] is None else f"{r['removed']:,}"
        lines.append(f"{r['store']:<9}{r['op']:<22}{k:>6}{r['median_ms']:>11.3f}"
                     f"{r['stdev_ms']:>9.3f}{r['reps']:>6}{removed:>9}")
    return lines


def _output_folder(args: argparse.Namespace) -> Path | None:
    """The --into folder when it is a run, else a new one; None when --into is not a run."""
    if args.into:
        folder = Path(args.into)
        return folder if (folder / "metadata.json").is_file() else None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(args.results) / f"{stamp}-revocation"


def cmd_bench_revocation(args: argparse.Namespace) -> int:
    """Blocklist storage growth and steady state, and the cost of logging out everywhere."""
    folder = _output_folder(args)
    if folder is None:
        print(f"authbench bench-revocation: {NOT_A_RUN.format(folder=args.into)}",
              file=sys.stderr)
        return 2
    config = RevocationBenchConfig(
        stores=tuple(args.stores), redis_url=args.redis_url, postgres_url=args.postgres_url,
        max_entries=args.max_entries, checkpoints=tuple(args.checkpoints),
        logout_rate=args.logout_rate, token_ttl=args.token_ttl,
        steady_seconds=args.steady_seconds, k=tuple(args.k), reps=args.reps,
    )
    result = run_revocation_bench(config, lambda line: print(line, file=sys.stderr, flush=True))
    folder.mkdir(parents=True, exist_ok=True)
    path = write_revocation_json(folder, result)
    print("\n".join(format_result(result)))
    from analysis.report import write_report

    written = write_report(folder)
    print(f"results: {path}; report: {written['html']}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be above 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text}: must be above 0")
    return value


def add_parser(sub: Any) -> None:
    """Register `authbench bench-revocation`."""
    parser = sub.add_parser("bench-revocation", help=cmd_bench_revocation.__doc__,
                            description=cmd_bench_revocation.__doc__)
    parser.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES))
    parser.add_argument("--redis-url", default=DEFAULT_STORE_URLS["redis"])
    parser.add_argument("--postgres-url", default=DEFAULT_STORE_URLS["postgres"])
    parser.add_argument("--max-entries", type=_positive_int, default=1_000_000)
    parser.add_argument("--checkpoints", nargs="+", type=_positive_int,
                        default=[1_000, 10_000, 100_000, 1_000_000],
                        help="blocklist sizes to measure at (capped at --max-entries)")
    parser.add_argument("--logout-rate", type=_positive_float, default=2000.0,
                        help="steady state: logouts per second")
    parser.add_argument("--token-ttl", type=_positive_float, default=6.0,
                        help="steady state: access token lifetime T, seconds")
    parser.add_argument("--steady-seconds", type=_positive_float,
                        help="steady state duration (default 3 x --token-ttl)")
    parser.add_argument("--k", nargs="+", type=_positive_int, default=[1, 10, 100, 1000],
                        help="sessions per user for logout-all")
    parser.add_argument("--reps", type=_positive_int,
                        help="repetitions per k (default 20 for k <= 100, 5 above)")
    parser.add_argument("--results", default="results")
    parser.add_argument("--into", metavar="RUN",
                        help="write revocation.json into this run folder (it has metadata.json)")
    parser.set_defaults(handler=cmd_bench_revocation)
