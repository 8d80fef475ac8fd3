"""The three measurements of bench-revocation, and the whole run over every store."""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from authbench.bench.revocation.result import (
    BACKGROUND_SESSIONS,
    BACKGROUND_USERS,
    BYTES_METHOD,
    FILE_FORMAT,
    NOTES,
    RESULT_FILE,
    RevocationBenchConfig,
    write_revocation_json,
)
from authbench.bench.revocation.stores import (
    UNAVAILABLE,
    BenchError,
    Meter,
    new_jti,
    private_store,
    raise_if_cancelled,
)
from authbench.infra.services import available_services
from authbench.run.extras import SuiteExtra
from authbench.run.rundir import collect_metadata
from targets.seeding import generate_sessions
from targets.stores import MemoryStore, Store

GROWTH_EXPIRY = 3600.0  # growth entries must outlive the measurement
CHECK_WARMUP = 10
SAMPLE_EVERY = 0.5
PACE_EVERY = 0.02  # seconds between steady-state insert batches
MAX_BATCH = 5_000  # steady-state inserts per batch, however far behind the pacing is
CUTOFF_REPS = 20
SESSION_IDLE_TTL, SESSION_ABSOLUTE_TTL = 1800, 43200

T = TypeVar("T")
Say = Callable[[str], None]


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


async def measure_growth(meter: Meter, config: RevocationBenchConfig, say: Say
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

async def measure_steady_state(meter: Meter, config: RevocationBenchConfig,
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
    for key, record in generate_sessions(k, 1, SESSION_IDLE_TTL, SESSION_ABSOLUTE_TTL):
        yield key, replace(record, user=user)


def _spread(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.stdev(values) if len(values) > 1 else 0.0


async def _timed(call: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    value = await call()
    return (time.perf_counter() - started) * 1000, value


async def measure_logout_all(meter: Meter, config: RevocationBenchConfig, say: Say
                             ) -> list[dict[str, Any]]:
    """delete_user_sessions over k sessions, and set_user_cutoff, with fresh users each rep."""
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
    return {"format": FILE_FORMAT, "started": started.isoformat(timespec="seconds"),
            "ended": datetime.now(UTC).isoformat(timespec="seconds"), "config": resolved,
            "machine": collect_metadata(), **parts}


def storage_extra(config: RevocationBenchConfig | None = None) -> SuiteExtra:
    """The suites' `revocation-storage` extra: this benchmark on the run's own stores."""

    def measure(folder: Path, store_urls: Mapping[str, str], note: Say) -> None:
        sized = replace(config or RevocationBenchConfig(), redis_url=store_urls["redis"],
                        postgres_url=store_urls["postgres"])
        write_revocation_json(folder, run_revocation_bench(sized, out=note))

    return SuiteExtra(RESULT_FILE, "blocklist storage and logout-everywhere cost "
                      "(authbench bench-revocation)", measure)
