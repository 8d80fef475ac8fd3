"""What bench-store measures (its config) and what store-ceiling.json holds.

store-ceiling.json, `"format": "authbench-store-ceiling/1"`:

    format, started, ended      the format; UTC times
    config                      stores, seconds, repeats, keys, redis_clients,
                                postgres_clients (what ran)
    machine                     collect_metadata(): cpu_model, cpu_count, git_commit, ...
    notes                       what the figures are and are not, in words
    skipped                     {store: why it was not measured}
    stores.<store>              "redis" and/or "postgres":
        server                  version; how it ran (private server or given URL's host);
                                Redis: given_server_version, that of the Redis at the URL
        tool                    redis-benchmark or pgbench, with its version
        store_cpus, client_cpus the CPUs the store and the benchmark client were pinned to
        is_pinned               whether the store had its CPU to itself
        loaded                  what the store held: sessions, blocklist entries, marker
        operations.<operation>  "session-get", "session-touch", "revocation-check":
            description         which target call it stands for
            command             the command or SQL as sent (a line)
            key_bytes           the bytes of each key it names (Redis)
            value_bytes         the bytes of each value it reads or writes (Redis; 0: miss)
            replies             what it finds, in words
            clients             connections driving it, no pipelining
            seconds             the planned seconds of one repeat
            ops_per_s           per repeat: operations per second the tool counted
            ops_per_s_median
            ops_per_s_spread    (max - min) / median over the repeats
            cpu_us_per_op       per repeat: the store's CPU µs per operation
            cpu_us_per_op_median
            ops_per_s_at_full_cpu  cores x 10^6 / cpu_us_per_op_median: the store's CPU
                                at 100 % (the estimate where the client ran out first)
            limited_by          "store" (its CPU >= 90 % busy), "client", "store and client",
                                "neither" (round trips), or "mixed: ..." over the repeats
            repeats             per repeat: requests, seconds, store_cpu_share,
                                client_cpu_share, cpu_busy (each CPU's busy share), p50_ms,
                                p99_ms, limited_by; Redis also command_us_per_call
                                (commandstats: the command alone, without I/O);
                                other_load {store_cpus, client_cpus}: what other processes
                                took of those CPUs (busy share minus the store's or the
                                client's own), is_disturbed: either >= 0.15
            disturbed_repeats   how many repeats were disturbed (the medians keep them)
    modes.<mode key>            "<mode>-<store>[-<revocation>]", e.g. "session-redis",
                                "jwt-redis-blocklist", "jwt-redis-pubsub":
        per_request             [{store, operation, per_request}]: store operations of every
                                request (empty: the hot path calls no store)
        periodic                [{store, operation, every_s, per}]: operations at most once
                                per every_s per `per` (a session's touch)
        hot_path                what the request does, in words

A store's capacity for a mode is then 1 / sum(per_request / ops_per_s_median) requests/s
(analysis/store/ceiling.py), the store term of min(N x node capacity, store capacity).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.data.formats import STORE_CEILING
from authbench.run.rundir import write_json
from targets.settings import DEFAULT_STORE_URLS

FILE_FORMAT = STORE_CEILING.current  # store-ceiling.json's "format"
RESULT_FILE = "store-ceiling.json"
STORES = ("redis", "postgres")


class StoreCeilingError(RuntimeError):
    """A measurement that cannot be trusted (errors from the store, nothing measured)."""


@dataclass(frozen=True)
class StoreCeilingConfig:
    """What `bench-store` measures; the defaults are the CLI's."""

    stores: tuple[str, ...] = STORES
    redis_url: str = DEFAULT_STORE_URLS["redis"]
    postgres_url: str = DEFAULT_STORE_URLS["postgres"]
    seconds: float = 3.0  # one repeat of one operation
    repeats: int = 3
    keys: int = 100_000  # live sessions, and blocklist entries, loaded
    redis_clients: int = 50  # redis-benchmark's default
    postgres_clients: int = 20  # one target process's pool (STORE_POOL_SIZE)

    def with_clients(self, clients: int | None) -> StoreCeilingConfig:
        """The same with one client count for every store (None: keep each default)."""
        if clients is None:
            return self
        return StoreCeilingConfig(self.stores, self.redis_url, self.postgres_url,
                                  self.seconds, self.repeats, self.keys, clients, clients)


def summarize(operation: dict[str, Any], repeats: list[dict[str, Any]], cores: int | None
              ) -> dict[str, Any]:
    """An operation's entry: its description plus the repeats, their medians and verdict.

    cores: the CPUs the store could use (Redis: 1), None when it was not confined.
    """
    rates = [r["ops_per_s"] for r in repeats]
    costs = [r["cpu_us_per_op"] for r in repeats]
    measured_costs = [c for c in costs if c is not None]
    cost = statistics.median(measured_costs) if measured_costs else None
    verdicts = [r["limited_by"] for r in repeats]
    return {
        **operation,
        "ops_per_s": rates,
        "ops_per_s_median": statistics.median(rates),
        # (max - min) / median: how far apart the repeats were.
        "ops_per_s_spread": round((max(rates) - min(rates)) / statistics.median(rates), 3)
        if statistics.median(rates) else None,
        "cpu_us_per_op": costs,
        "cpu_us_per_op_median": cost,
        # What the store's CPU per op allows with its cores 100 % busy: the ceiling's
        # estimate where the client ran out first (then ops_per_s is a lower bound).
        "ops_per_s_at_full_cpu": cores * 1e6 / cost if cores and cost else None,
        "limited_by": verdict(verdicts),
        "disturbed_repeats": sum(1 for r in repeats if r.get("is_disturbed")),
        "repeats": repeats,
    }


def verdict(verdicts: list[str]) -> str:
    """One verdict over the repeats: theirs when they agree, else 'mixed: a, b'."""
    distinct = list(dict.fromkeys(verdicts))
    return distinct[0] if len(distinct) == 1 else "mixed: " + ", ".join(distinct)


def write_store_ceiling_json(folder: Path, result: dict[str, Any]) -> Path:
    """Write store-ceiling.json into folder (atomically); return its path."""
    path = folder / RESULT_FILE
    write_json(path, result)
    return path
