"""Builds the checked-in result fixtures under tests/fixtures/runs/ (known inputs).

`python -m tests.analysis.fixtures` rewrites them; test_report.py and test_compare.py
check the files on disk are exactly what this code builds, so they cannot drift.

Every cell is one 10 s measured window on a 2-core machine, targets pinned to CPU 0
and the load generator to CPU 1, so each figure can be worked out by hand:

    target_cpu_us  = target CPU seconds in the window * 10^6 / requests (failed ones too)
    target_util    = target CPU seconds / 10 s / min(nodes, 1 target core)
    generator_util = generator CPU seconds / 10 s / 1 recording process
    store_util     = store CPU seconds / 10 s / 1 (Redis) or / 2 (PostgreSQL: every core)

The same writers build further runs inside tests (tmp_path), with the values a test
needs. metadata.json and cell.json are written as runs were before the "format" key
(schema_version 1; no version), so every test over these runs also reads an old run;
test_load checks the same run in today's formats reads the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "runs"
STARTED = 1_800_000_000.0
MEASURE_FROM = STARTED + 2
MEASURE_UNTIL = STARTED + 12  # a 10 s window: rps = count / 10
WINDOW_SECONDS = MEASURE_UNTIL - MEASURE_FROM
CPU_COUNT = 2
PINNED = {"is_pinned": True, "target_cpus": [0], "generator_cpus": [1]}


def _encoded(values_us: Sequence[int]) -> str:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value in values_us:
        histogram.record_value(value)
    return str(histogram.encode().decode())


def _checks(mode: str, revocation: str) -> list[dict[str, Any]]:
    names = ["health", "no credential", "login", "with credential"]
    if mode == "session" or revocation == "blocklist":
        names.append("revoked after logout")
    elif mode != "none":
        names.append("valid until exp (no revocation configured)")
    return [{"name": n, "is_passed": True, "detail": "HTTP 200"} for n in names]


def timeline(cpu_seconds: float) -> list[list[float]]:
    """A sampled cumulative CPU timeline over the window: 0 at its start, linear to the end."""
    return [[MEASURE_FROM, 0.0], [MEASURE_FROM + WINDOW_SECONDS / 2, cpu_seconds / 2],
            [MEASURE_UNTIL, cpu_seconds]]


@dataclass(frozen=True)
class Usage:
    """CPU seconds each component spent inside the measured window, and the cores' load."""

    target_s: tuple[float, ...]  # one per node
    generator_s: float | None = None  # None: no generator sampled (an older run)
    store_s: float | None = None  # None: no shared store
    store_kind: str = "redis"
    cpu_busy: tuple[float, ...] = ()  # each core's busy share; core 0 is the targets'
    placement: dict[str, Any] | None = None  # None: PINNED


CELL_DEFAULTS: dict[str, Any] = {
    "mode": "jwt", "store": "memory", "alg": "HS256", "revocation": "none", "verify_cache": 0,
    "scenario": "read", "users": 10, "spawn_rate": 0.0, "nodes": 1, "workers": 0, "scale": 0,
    "duration": 10.0, "warmup": 2.0, "balance": "roundrobin",
}


def write_metadata(run: Path, run_id: str, repeats: int = 1) -> None:
    """A run's metadata.json (a 2-core fixture machine)."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "metadata.json").write_text(json.dumps({
        "schema_version": 1, "run_id": run_id, "status": "complete",
        "started": "2027-01-15T08:00:00+00:00", "ended": "2027-01-15T08:05:00+00:00",
        "suite": {"name": run_id, "repeats": repeats, "cells": [], "skipped": []},
        "machine": {"cpu_count": CPU_COUNT, "cpu_model": "Fixture CPU", "python": "3.11.7",
                    "memory_bytes": 8 * 2**30, "platform": "Linux", "packages": {"PyJWT": "2.15.1"},
                    "openssl": {"python_ssl": "OpenSSL 3.0"}, "git_commit": "fixture"},
        "topology": {"load_balancer": "haproxy"}, "placement": PINNED, "notes": [],
    }, indent=1, sort_keys=True))


def write_cell(folder: Path, cell: dict[str, Any], latency_us: Sequence[int], usage: Usage, *,
               auth_us: Sequence[int] = (), auth_cpu_us: Sequence[int] = (),
               store_us: Sequence[int] = (), failures: int = 0, credential_bytes: int = 300,
               sign_us: float | None = None, store_rtt_us: float | None = None) -> None:
    """One measured cell as the runner writes it: hdr file, Locust stats and cell.json."""
    folder.mkdir(parents=True, exist_ok=True)
    full = {**CELL_DEFAULTS, **cell}
    endpoint = "GET /api/me"
    histograms = {endpoint: _encoded(latency_us)}
    for metric, values in (("auth", auth_us), ("auth-cpu", auth_cpu_us), ("store", store_us)):
        if values:
            histograms[f"{metric} {endpoint}"] = _encoded(values)
    (folder / "hdr-fixture-1.json").write_text(json.dumps({
        "format": "authbench-hdr/2", "unit": "us", "lowest": 1, "highest": 60_000_000,
        "significant_figures": 3, "host": "fixture", "pid": 1, "window": 1,
        "started": STARTED, "measured_from": MEASURE_FROM, "measured_until": MEASURE_UNTIL,
        "histograms": histograms, "failures": {endpoint: failures} if failures else {},
    }, sort_keys=True))
    count = len(latency_us)
    (folder / "locust_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Requests/s\n"
        f"GET,/api/me,{count + failures},{failures},{(count + failures) / 10}\n"
        f",Aggregated,{count + failures},{failures},{(count + failures) / 10}\n")
    record: dict[str, Any] = {
        "name": folder.name, "cell": full, "status": "ok", "reason": "",
        "topology": {"kind": "haproxy" if full["nodes"] > 1 else "single"},
        "verify": [{"is_passed": True, "checks": _checks(full["mode"], full["revocation"]),
                    "credential_bytes": credential_bytes}],
        "nodes": [{"pid": 10 + index, "cpu_seconds": cpu, "peak_rss_bytes": 100 * 2**20,
                   "cpu_timeline": timeline(cpu)} for index, cpu in enumerate(usage.target_s)],
        "cpu_busy": list(usage.cpu_busy),
        "placement": PINNED if usage.placement is None else usage.placement,
        "window": {"seq": 1, "warmup": full["warmup"], "planned_seconds": full["duration"],
                   "measure_from": MEASURE_FROM, "measure_until": MEASURE_UNTIL},
        "locust": {"exit_code": 0, "cpu_warnings": 0, "command": []},
    }
    if usage.generator_s is not None:
        record["generator"] = [{"pid": 2, "cpu_seconds": usage.generator_s,
                                "peak_rss_bytes": 50 * 2**20,
                                "cpu_timeline": timeline(usage.generator_s)}]
    if usage.store_s is not None:
        record["store_cpu"] = {"kind": usage.store_kind, "cpu_seconds": usage.store_s,
                               "cpu_timeline": timeline(usage.store_s)}
    if sign_us is not None:
        record["sign_us"] = sign_us
    if store_rtt_us is not None:
        record["store_rtt_us"] = store_rtt_us
    (folder / "cell.json").write_text(json.dumps(record, indent=1, sort_keys=True))


def build_tiny(root: Path = ROOT) -> Path:
    """A run of seven cells whose figures are known exactly (see test_report.py).

    In the window (10 s), per cell: requests, target CPU s -> µs per request and
    utilisation, generator CPU s -> utilisation, core 0's busy share -> bottleneck.
    """
    run = root / "tiny"
    cells = run / "cells"
    write_metadata(run, "tiny")
    # none: 1,000 requests of 1..1000 us (p50 0.5 ms, p99 0.99 ms). 2.5 s of target CPU:
    # 2,500 µs per request, target 25 % busy; the generator 90 %: limited by it.
    write_cell(cells / "001-none-read-u10-n1-r1", {"mode": "none"}, list(range(1, 1001)),
               Usage((2.5,), generator_s=9.0, cpu_busy=(0.27, 0.92)), credential_bytes=0)
    # session in memory: 900 requests at 2 ms, auth 5 us (wall) and 4 us (CPU). 3.6 s:
    # 4,000 µs per request, target 36 %, generator 40 %: nothing saturated.
    write_cell(cells / "002-session-memory-read-u10-n1-r1", {"mode": "session"}, [2000] * 900,
               Usage((3.6,), generator_s=4.0, cpu_busy=(0.38, 0.42)),
               auth_us=[5] * 900, auth_cpu_us=[4] * 900, credential_bytes=49)
    # jwt HS256: 800 requests at 3 ms, auth 60 us (wall) and 50 us (CPU). 8.8 s:
    # 11,000 µs per request, target 88 %: the target is the bottleneck.
    write_cell(cells / "003-jwt-memory-HS256-read-u10-n1-r1", {"mode": "jwt"}, [3000] * 800,
               Usage((8.8,), generator_s=3.0, cpu_busy=(0.9, 0.31)),
               auth_us=[60] * 800, auth_cpu_us=[50] * 800, credential_bytes=320, sign_us=12.5)
    # memory sessions on 2 nodes (round robin, one target core: oversubscribed): half the
    # requests fail. 1.5 s per node over 1,000 requests: 3,000 µs; target 30 %. Core 0 is
    # 97 % busy, but the targets used less than half of it: not the bottleneck.
    write_cell(cells / "004-session-memory-read-u10-n2-r1", {"mode": "session", "nodes": 2},
               [2000] * 500, Usage((1.5, 1.5), generator_s=2.0, cpu_busy=(0.97, 0.25)),
               auth_us=[5] * 500, auth_cpu_us=[4] * 500, failures=500, credential_bytes=49)
    # jwt on 2 nodes: 1,600 requests, 3.6 s per node: 4,500 µs; target 72 %, below 85 %,
    # but its pinned core was 98 % busy: the target is the bottleneck all the same.
    write_cell(cells / "005-jwt-memory-HS256-read-u10-n2-r1", {"mode": "jwt", "nodes": 2},
               [3000] * 1600, Usage((3.6, 3.6), generator_s=5.5, cpu_busy=(0.98, 0.55)),
               auth_us=[60] * 1600, auth_cpu_us=[50] * 1600, credential_bytes=320,
               sign_us=12.5)
    failed = cells / "006-hybrid-memory-HS256-read-u10-n1-r1"
    failed.mkdir(parents=True, exist_ok=True)
    (failed / "cell.json").write_text(json.dumps({
        "name": failed.name, "cell": {**CELL_DEFAULTS, "mode": "hybrid"}, "status": "failed",
        "reason": "verification failed on http://127.0.0.1:1: revoked after logout: HTTP 200",
    }, indent=1, sort_keys=True))
    # session in Redis: 2,000 requests at 2.2 ms; auth 300 us (wall), 6 us (CPU), its
    # awaited store calls 250 us; one lookup on the idle store 45.5 us. Target 3.0 s:
    # 1,500 µs; Redis 8.8 s of its one thread: 4,400 µs, 88 % busy: the bottleneck.
    write_cell(cells / "007-session-redis-read-u10-n1-r1", {"mode": "session", "store": "redis"},
               [2200] * 2000, Usage((3.0,), generator_s=4.0, store_s=8.8, cpu_busy=(0.31, 0.45)),
               auth_us=[300] * 2000, auth_cpu_us=[6] * 2000, store_us=[250] * 2000,
               credential_bytes=49, store_rtt_us=45.5)
    return run


@dataclass(frozen=True)
class Config:
    """One configuration's repeats, by what each window cost per request.

    The target's CPU in repeat i is target_us[i] x counts[i] / 10^6 seconds, so the
    loader's target_cpu_us is target_us[i]; the same for the store (a Redis) with
    store_us. Core 0's busy share is the target's utilisation.
    """

    key: str  # the cell's name without index and repeat, e.g. "jwt-memory-HS256-read-u10-n1"
    cell: dict[str, Any]
    counts: tuple[int, ...]  # GET /api/me requests in each repeat's 10 s window
    target_us: tuple[float, ...]
    generator_s: float = 3.0  # generator CPU seconds in every window (9.0: 90 %)
    store_us: tuple[float, ...] = ()
    latency_us: int = 3000
    credential_bytes: int = 300
    sign_us: tuple[float, ...] = ()
    store_rtt_us: float | None = None
    auth_us: int | None = None  # Server-Timing auth (wall) of every request; None: none
    auth_cpu_us: int | None = None  # Server-Timing auth-cpu; None: none (loads faster)


def write_run(run: Path, configs: Sequence[Config], run_id: str | None = None) -> Path:
    """A run whose configurations' repeats are interleaved as the runner does: A B A B."""
    repeats = len(configs[0].counts)
    write_metadata(run, run_id or run.name, repeats=repeats)
    index = 0
    for repeat in range(repeats):
        for config in configs:
            index += 1
            count = config.counts[repeat]
            target_s = config.target_us[repeat] * count / 1e6
            store_s = config.store_us[repeat] * count / 1e6 if config.store_us else None
            write_cell(run / "cells" / f"{index:03d}-{config.key}-r{repeat + 1}", config.cell,
                       [config.latency_us] * count,
                       Usage((target_s,), generator_s=config.generator_s, store_s=store_s,
                             cpu_busy=(round(target_s / WINDOW_SECONDS, 4),
                                       round(config.generator_s / WINDOW_SECONDS, 4))),
                       auth_us=[config.auth_us] * count if config.auth_us else (),
                       auth_cpu_us=[config.auth_cpu_us] * count if config.auth_cpu_us else (),
                       store_us=[120] * count if store_s is not None else (),
                       credential_bytes=config.credential_bytes,
                       sign_us=config.sign_us[repeat] if config.sign_us else None,
                       store_rtt_us=config.store_rtt_us)
    return run


# The pair: one JWT configuration x 4 repeats, every window target-bound (util >= 85 %).
# 'after' costs 30 % more CPU per request in every repeat; the ranges do not overlap.
PAIR_KEY = "jwt-memory-HS256-read-u10-n1"
BEFORE = Config(PAIR_KEY, {"mode": "jwt"}, counts=(1000, 1020, 980, 1010),
                target_us=(9000.0, 9100.0, 8900.0, 9050.0),  # median 9,025; 100.5 req/s
                auth_us=60)
AFTER = Config(PAIR_KEY, {"mode": "jwt"}, counts=(770, 780, 760, 775),
               target_us=(11700.0, 11830.0, 11570.0, 11765.0),  # x 1.3: 11,732.5; 77.25
               auth_us=60)


def build_pair(root: Path = ROOT) -> tuple[Path, Path]:
    """Two runs of one JWT cell x 4 repeats: 'after' costs 30 % more per request."""
    return write_run(root / "before", [BEFORE]), write_run(root / "after", [AFTER])


def watch(node: int, rejected: float | None, accepted: int = 0, before: bool = True,
          credential: str = "access") -> dict[str, Any]:
    """One node's watch of a revocation probe trial (loadtests/revocation.py's format)."""
    return {"node": node, "credential": credential, "accepted_before": before,
            "rejected_after_s": rejected, "accepted_after_logout": accepted,
            "last_accepted_s": None, "replays": accepted + 1, "errors": 0}


def trial(number: int, watches: list[dict[str, Any]], expires_in: float | None = 900.0,
          complete: bool = True, login_node: int = 0) -> dict[str, Any]:
    """One probe trial: a logout, then the watches of every node."""
    return {"probe": 0, "number": number, "mode": "jwt", "logout": "one",
            "login_node": login_node, "logout_at": 1e9 + number, "interval_s": 0.02,
            "max_wait_s": 10.0, "expires_in_s": expires_in, "watches": watches,
            "observed_s": 10.0 if complete else 3.0, "is_complete": complete}


def write_probes(folder: Path, trials: list[dict[str, Any]]) -> None:
    """A probe file of one Locust process in a cell folder."""
    (folder / "probe-host-1.json").write_text(json.dumps(
        {"format": "authbench-probe/1", "host": "host", "pid": 1, "trials": trials}))


def write_probe_cell(run: Path, name: str, cell: dict[str, Any], trials: list[dict[str, Any]],
                     status: str = "ok") -> None:
    """A cell folder holding only its cell.json and a probe file."""
    folder = run / "cells" / name
    folder.mkdir(parents=True)
    (folder / "cell.json").write_text(json.dumps({"status": status, "cell": cell}))
    write_probes(folder, trials)


def build_probes(run: Path) -> Path:
    """Probe files of three strategies, each with what a lag table must handle.

    Sessions in Redis on 2 nodes: 4 trials rejected at 1 ms (the node that logged out)
    and 2 ms (the other), and one cut short before its first replay. A per-node memory
    blocklist with 5 s tokens on 2 nodes: the other node rejects only at expiry (6 s,
    300 accepted), is cut short while still accepting, or never knew the token. JWT
    without revocation: never rejected, 500 accepted. Plus a failed cell (left out).
    """
    session = {"mode": "session", "store": "redis", "revocation": "none", "nodes": 2}
    cut_short = {**watch(0, None), "replays": 0}  # the run ended before its first replay
    write_probe_cell(run, "001-session-redis-revocation-u4-n2-r1", session,
                     [*(trial(i, [watch(0, 0.001), watch(1, 0.002)], None) for i in range(4)),
                      trial(4, [cut_short, {**cut_short, "node": 1}], None, complete=False)])
    per_node = {"mode": "jwt", "store": "memory", "revocation": "blocklist", "nodes": 2,
                "access_ttl": 5}
    write_probe_cell(run, "002-jwt-memory-revocation-u4-n2-r1", per_node, [
        trial(1, [watch(0, 0.001), watch(1, 6.0, accepted=300)], expires_in=4.0),
        trial(2, [watch(0, 0.001), watch(1, None, accepted=150)], expires_in=4.5,
              complete=False),
        trial(3, [watch(0, 0.001), watch(1, 0.0, before=False)], expires_in=4.5),
    ])
    plain = {"mode": "jwt", "store": "memory", "revocation": "none", "nodes": 1}
    write_probe_cell(run, "003-jwt-memory-revocation-u4-n1-r1", plain,
                     [trial(1, [watch(0, None, accepted=500)], expires_in=890.0)])
    write_probe_cell(run, "004-failed-r1", plain, [trial(1, [watch(0, 0.5)])], status="failed")
    return run


def add_probes(run: Path) -> None:
    """Probe files in two cells of a copy of the tiny fixture run (session, 2-node JWT)."""
    write_probes(run / "cells" / "002-session-memory-read-u10-n1-r1",
                 [trial(i, [watch(0, 0.001)], None) for i in range(5)])
    write_probes(run / "cells" / "005-jwt-memory-HS256-read-u10-n2-r1",
                 [trial(i, [watch(0, None, 400), watch(1, None, 400)], 880.0) for i in range(3)])


if __name__ == "__main__":
    print(build_tiny())
    print(build_pair())
