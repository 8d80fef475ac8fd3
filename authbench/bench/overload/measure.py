"""Drive one target after another past its capacity and watch it recover."""

from __future__ import annotations

import gzip
import os
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from analysis.data.formats import OVERLOAD
from authbench.bench.h2load import run_h2load
from authbench.bench.overload.result import (
    RECOVERED_RUN,
    OverloadRow,
    Probe,
    Sample,
    recovered_after,
    summarize,
)
from authbench.bench.targetbench import credential_headers
from authbench.bench.wrk import run_wrk
from authbench.infra.children import StopOnSignals
from authbench.infra.launcher import TargetProcess
from authbench.infra.services import DEFAULT_PORTS, service_answers
from authbench.run.placement import plan_placement
from authbench.run.rundir import collect_metadata, write_json
from targets.settings import DEFAULT_STORE_URLS, Settings

REDIS_URL = DEFAULT_STORE_URLS["redis"]
REDIS_ENV = {"STORE": "redis", "STORE_URL": REDIS_URL, "STORE_NAMESPACE": "authbench-overload"}
MODES: dict[str, dict[str, str]] = {
    "none": {"AUTH_MODE": "none"},
    "session-memory": {"AUTH_MODE": "session", "STORE": "memory"},
    "jwt-HS256": {"AUTH_MODE": "jwt", "JWT_ALG": "HS256"},
    "session-redis": {"AUTH_MODE": "session", **REDIS_ENV},
    "jwt-HS256-redis-blocklist": {"AUTH_MODE": "jwt", "JWT_ALG": "HS256",
                                  "JWT_REVOCATION": "blocklist", **REDIS_ENV},
    "hybrid-HS256": {"AUTH_MODE": "hybrid", "JWT_ALG": "HS256"},
}
PROBE_INTERVAL = 0.1
PROBE_TIMEOUT = 2.0
SAMPLE_INTERVAL = 0.25
CLIENTS_PER_REQUEST_SLOT = 3
SECONDS_PER_MODE = 15  # start, log in, wrk, baseline and recovery, besides the overload
RESULT_FILE = "bench-overload.json"


@dataclass(frozen=True)
class OverloadConfig:
    """What bench-overload does; the defaults are the CLI's."""

    only: tuple[str, ...] = ()  # names in MODES; empty: all
    seconds: int = 30  # overload duration
    factor: float = 3.0  # offered load / capacity
    capacity_seconds: int = 5
    connections: int = 32  # wrk's, for capacity
    max_concurrency: int | None = None  # the targets' MAX_CONCURRENCY; None: their default
    clients: int | None = None  # h2load connections; None: 3 x MAX_CONCURRENCY, at least 64
    recovery_factor: float = 1.5  # recovered: latency back within this x the baseline
    watch: float = 10.0  # seconds to probe after the load at most
    pin: bool = True  # target and generators on disjoint CPUs


@dataclass(frozen=True)
class OverloadOutcome:
    """Each measured mode's row, the modes skipped or failed (with why), the folder."""

    rows: list[OverloadRow]
    skipped: dict[str, str]
    failed: dict[str, str]
    folder: Path

    @property
    def is_ok(self) -> bool:
        """Every mode measured, and each one's row ok."""
        return all(r.is_ok for r in self.rows) and not self.failed


class ResourceSampler:
    """Samples one process's RSS and CPU in a thread until stopped."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.origin = time.monotonic()
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _loop(self) -> None:
        while True:
            try:
                with self.process.oneshot():
                    times = self.process.cpu_times()
                    rss = self.process.memory_info().rss
            except psutil.Error:
                return  # the target died: the caller sees it
            self.samples.append(Sample(round(time.monotonic() - self.origin, 3), rss,
                                       times.user + times.system))
            if self._stop.wait(self.interval):
                return

    def start(self) -> ResourceSampler:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


def peak_rss_bytes(pid: int) -> int | None:
    """The kernel's high-water mark of the process's RSS (VmHWM), over its whole life."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def probe(url: str, headers: dict[str, str], seconds: float, origin: float,
          stop_when_recovered_below: float | None = None) -> list[Probe]:
    """GET url every PROBE_INTERVAL for up to `seconds`; optionally stop once recovered."""
    probes: list[Probe] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(headers=headers, timeout=PROBE_TIMEOUT) as client:
        while time.monotonic() < deadline:
            began = time.monotonic()
            try:
                status = client.get(url).status_code
            except httpx.HTTPError:
                status = 0
            took = time.monotonic() - began
            probes.append(Probe(round(began - origin, 3), status, took * 1000))
            if (stop_when_recovered_below is not None
                    and recovered_after(probes, stop_when_recovered_below) is not None
                    and len(probes) >= 2 * RECOVERED_RUN):
                break
            time.sleep(max(0.0, PROBE_INTERVAL - took))
    return probes


def h2load_version() -> str:
    try:
        done = subprocess.run(["h2load", "--version"], capture_output=True, text=True,
                              timeout=10, check=False)
    except OSError:
        return "missing"
    return done.stdout.strip()


def busy_shares(before: list[Any], after: list[Any]) -> list[float]:
    """Each core's busy share between two psutil.cpu_times(percpu=True) readings."""
    shares = []
    for a, b in zip(before, after, strict=False):
        total = sum(b) - sum(a)
        idle = (b.idle + getattr(b, "iowait", 0.0)) - (a.idle + getattr(a, "iowait", 0.0))
        shares.append(1 - idle / total if total > 0 else 0.0)
    return shares


def overload_mode(name: str, target: TargetProcess, headers: dict[str, str],
                  config: OverloadConfig, clients: int, folder: Path,
                  target_cpus: tuple[int, ...] = ()) -> dict[str, Any]:
    """Capacity, baseline, overload and recovery of one running target; the raw record."""
    url = f"{target.url}/api/me"
    run_wrk(url, 2, config.connections, headers=headers)  # warm-up, discarded
    capacity = run_wrk(url, config.capacity_seconds, config.connections, headers=headers)
    if capacity.non_2xx or capacity.socket_errors:
        raise RuntimeError(f"{name}: wrk saw errors at capacity: {capacity}")
    print(f"      capacity {capacity.rps:,.0f} req/s (wrk, {config.connections} connections, "
          f"{config.capacity_seconds} s, p99 {capacity.p99_ms:.1f} ms)", flush=True)
    time.sleep(1)  # let the loop go idle before the baseline
    baseline = probe(url, headers, 2.0, time.monotonic())
    offered = config.factor * capacity.rps
    print(f"      baseline {statistics.median(p.ms for p in baseline):.2f} ms; offering "
          f"{offered:,.0f} req/s for {config.seconds} s over {clients} connections", flush=True)
    sampler = ResourceSampler(target.pid).start()
    cores_before = psutil.cpu_times(percpu=True)
    log_path = folder / f"{name}-h2load.log"
    load = run_h2load(url, config.seconds, clients, offered / clients, log_path, headers=headers)
    stopped = time.monotonic()
    cores = busy_shares(cores_before, psutil.cpu_times(percpu=True))
    cores_busy = sum(cores[c] for c in target_cpus) if target_cpus else float("nan")
    after = probe(url, headers, config.watch, stopped,
                  stop_when_recovered_below=config.recovery_factor
                  * statistics.median(p.ms for p in baseline if 200 <= p.status < 300))
    samples = sampler.stop()  # at_s from the sampler's start, just before h2load's
    is_alive = target.is_alive()
    with log_path.open("rb") as raw, gzip.open(f"{log_path}.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)  # every request's start, status and µs, kept
    log_path.unlink()
    row = summarize(name, capacity.rps, load, samples, baseline, after, config.recovery_factor,
                    is_alive, cores_busy)
    recovery = "no" if row.recovery_s is None else f"{row.recovery_s:.1f} s"
    print(f"      delivered {row.delivered_rps:,.0f} req/s, 2xx {row.ok_rps:,.0f} req/s, "
          f"503 {row.shed_share:.0%}, other 5xx {row.other_5xx}, errors {row.errors}, "
          f"peak RSS {row.rss_peak_mb:.0f} MB, recovered after {recovery}", flush=True)
    return {"row": row, "raw": {
        "capacity": asdict(capacity), "load": load.as_dict(),
        "samples": [asdict(s) for s in samples], "baseline": [asdict(p) for p in baseline],
        "after": [asdict(p) for p in after], "vm_hwm_bytes": peak_rss_bytes(target.pid),
        "cores_busy_during_load": cores,
    }}


def run_bench_overload(config: OverloadConfig, results: Path) -> OverloadOutcome:
    """Every chosen mode in turn; bench-overload.json in a new folder under results."""
    limit = config.max_concurrency if config.max_concurrency is not None \
        else Settings.from_env().max_concurrency
    # More connections than request slots, or nothing is ever shed (over HTTP/1.1 each
    # connection carries one request at a time); fewer than uvicorn's connection bound
    # (CONNECTIONS_PER_REQUEST_SLOT x), so the bound measured is the one on requests.
    clients = config.clients or max(CLIENTS_PER_REQUEST_SLOT * limit, 64)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = results / f"bench-overload-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    chosen = {name: MODES[name] for name in (config.only or MODES)}
    skipped: dict[str, str] = {}
    if not service_answers(REDIS_URL, DEFAULT_PORTS["redis"]):
        for name in [n for n, env in chosen.items() if env.get("STORE") == "redis"]:
            skipped[name] = f"Redis does not answer at {REDIS_URL}"
            del chosen[name]
    placement = plan_placement(config.pin)
    record: dict[str, Any] = {
        "format": OVERLOAD.current, "metadata": collect_metadata(), "h2load": h2load_version(),
        "placement": placement.describe(), "max_concurrency": limit, "clients": clients,
        "factor": config.factor, "seconds": config.seconds,
        "recovery_factor": config.recovery_factor,
        "skipped": skipped, "modes": {},
    }
    rows: list[OverloadRow] = []
    failed: dict[str, str] = {}
    everything = set(placement.target_cpus) | set(placement.generator_cpus)
    minutes = len(chosen) * (config.seconds + SECONDS_PER_MODE + config.capacity_seconds) / 60
    print(f"bench-overload: {len(chosen)} modes, MAX_CONCURRENCY={limit}, {clients} h2load "
          f"connections, about {minutes:.0f} min", flush=True)
    for name, why in skipped.items():
        print(f"      {name}: skipped, {why}", flush=True)
    with StopOnSignals():  # Ctrl-C, SIGTERM, SIGHUP: no target or h2load outlives this
        for index, (name, env) in enumerate(chosen.items(), 1):
            print(f"[{index}/{len(chosen)}] {name}", flush=True)
            target = TargetProcess({**env, "MAX_CONCURRENCY": str(limit)},
                                   log_path=folder / f"{name}.log")
            try:
                target.start()
                target.wait_ready()
                headers = credential_headers(target.url, env["AUTH_MODE"])
                placement.pin_target(target.pid)
                if placement.is_pinned:
                    os.sched_setaffinity(0, placement.generator_cpus)
                measured = overload_mode(name, target, headers, config, clients, folder,
                                         placement.target_cpus if placement.is_pinned else ())
            except (RuntimeError, httpx.HTTPError) as exc:  # TargetFailed is a RuntimeError
                failed[name] = f"FAILED: {str(exc)[-300:]}"
                print(f"      {failed[name]}", flush=True)
                continue
            finally:
                os.sched_setaffinity(0, everything)
                target.stop()
            rows.append(measured["row"])
            record["modes"][name] = {**measured["raw"], "summary": asdict(measured["row"])}
            write_json(folder / RESULT_FILE, record)
    record["failed"] = failed
    write_json(folder / RESULT_FILE, record)
    return OverloadOutcome(rows, skipped, failed, folder)

