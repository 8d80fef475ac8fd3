"""The whole bench-store run over the stores asked for, and the suites' store-ceiling extra."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import redis

from authbench.bench.storeceiling.operations import NOTES, mode_operations
from authbench.bench.storeceiling.postgres_ceiling import measure_postgres
from authbench.bench.storeceiling.redis_ceiling import measure_redis
from authbench.bench.storeceiling.result import (
    FILE_FORMAT,
    RESULT_FILE,
    StoreCeilingConfig,
    StoreCeilingError,
    write_store_ceiling_json,
)
from authbench.bench.storeceiling.tools import CpuPlan, missing_tools, plan_cpus
from authbench.infra.services import available_services
from authbench.run.extras import SuiteExtra
from authbench.run.faults import FaultError
from authbench.run.rundir import collect_metadata
from targets.stores import StoreUnavailable

Say = Callable[[str], None]
MEASURE: dict[str, Callable[[StoreCeilingConfig, CpuPlan, Say], dict[str, Any]]] = {
    "redis": measure_redis, "postgres": measure_postgres,
}
# A store that fails mid-measurement is skipped with the reason; anything else is a bug.
FAILURES = (StoreCeilingError, FaultError, StoreUnavailable, redis.RedisError, OSError,
            TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def where(url: str) -> str:
    """host:port of a store URL (never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _why_not(kind: str, config: StoreCeilingConfig, answering: list[str]) -> str | None:
    """Why `kind` cannot be measured here, or None."""
    missing = missing_tools(kind)
    if missing:
        return f"{', '.join(missing)} not installed"
    if kind not in answering:
        url = config.redis_url if kind == "redis" else config.postgres_url
        return f"nothing answers at {where(url)}"
    return None


def run_store_ceiling(config: StoreCeilingConfig, out: Say | None = None) -> dict[str, Any]:
    """Measure every store asked for that answers; the result as store-ceiling.json holds it."""
    say: Say = out or (lambda line: None)
    started = datetime.now(UTC)
    plan = plan_cpus()
    if not plan.is_pinned:
        say("note: one CPU only: the store and the benchmark client share it")
    answering = available_services(config.redis_url, config.postgres_url)
    stores: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for kind in config.stores:
        reason = _why_not(kind, config, answering)
        if reason is None:
            try:
                stores[kind] = MEASURE[kind](config, plan, say)
            except FAILURES as exc:
                reason = f"{type(exc).__name__}: {exc}"
        if reason is not None:
            skipped[kind] = reason
            say(f"note: {kind} not measured: {reason}")
    if not stores:
        raise StoreCeilingError("no store measured: " + "; ".join(
            f"{kind}: {reason}" for kind, reason in skipped.items()))
    settings = {**asdict(config), "redis_url": where(config.redis_url),
                "postgres_url": where(config.postgres_url)}
    return {"format": FILE_FORMAT, "started": started.isoformat(timespec="seconds"),
            "ended": datetime.now(UTC).isoformat(timespec="seconds"), "config": settings,
            "machine": collect_metadata(), "notes": NOTES, "skipped": skipped,
            "stores": stores, "modes": mode_operations()}


def store_ceiling_extra(config: StoreCeilingConfig | None = None) -> SuiteExtra:
    """The suites' `store-ceiling` extra: each answering store's ceiling, into the run."""

    def measure(folder: Path, store_urls: Mapping[str, str], note: Say) -> None:
        sized = replace(config or StoreCeilingConfig(), redis_url=store_urls["redis"],
                        postgres_url=store_urls["postgres"])
        write_store_ceiling_json(folder, run_store_ceiling(sized, out=note))

    return SuiteExtra(RESULT_FILE, "the shared store's ceiling: each mode's store operations "
                      "at saturation (authbench bench-store)", measure)
