"""`authbench bench-overload`: each mode driven at three times its capacity, then let go.

Per mode: start one target, log in once, measure its capacity (wrk, closed loop at
saturation), take a latency baseline at a low rate, offer `factor` x capacity for
`seconds` open-loop (h2load), sampling the target's RSS and CPU, then probe every
100 ms until its latency is back within `recovery_factor` x the baseline. The target
sheds what it cannot serve with 503 (MAX_CONCURRENCY, see authbench/infra/serve.py).
"""

from __future__ import annotations

import argparse
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

from authbench.bench.h2load import H2loadResult, run_h2load
from authbench.bench.targetbench import credential_headers
from authbench.bench.wrk import run_wrk
from authbench.infra.children import StopOnSignals
from authbench.infra.launcher import TargetProcess
from authbench.infra.services import service_answers
from authbench.run.placement import plan_placement
from authbench.run.rundir import collect_metadata, write_json
from targets.settings import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"
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
RECOVERED_RUN = 5  # consecutive probes that must all be back to normal
RECOVERY_BAR_S = 5.0
SAMPLE_INTERVAL = 0.25
CLIENTS_PER_REQUEST_SLOT = 3
SECONDS_PER_MODE = 15  # start, log in, wrk, baseline and recovery, besides the overload
MB = 1024 * 1024


@dataclass(frozen=True)
class Probe:
    """One low-rate request: seconds since the load stopped, its status (0: none), ms."""

    at_s: float
    status: int
    ms: float


@dataclass(frozen=True)
class Sample:
    """The target's RSS and CPU seconds at a moment (seconds since the load started)."""

    at_s: float
    rss_bytes: int
    cpu_s: float


@dataclass(frozen=True)
class OverloadRow:
    """One mode's figures, as the table shows them."""

    name: str
    capacity_rps: float
    offered_rps: float
    delivered_rps: float
    ok_rps: float
    shed_share: float  # 503s over every request h2load logged
    other_5xx: int
    other_status: int  # answers that were neither 2xx nor 5xx
    errors: int  # streams that got no answer, and h2load's errored count
    timeouts: int
    ok_p50_ms: float | None
    ok_p99_ms: float | None
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    cpu_share: float  # target CPU seconds per second of load (1.0 = one core)
    others_share: float  # the target's cores busy with other work over the load (0..1)
    baseline_ms: float
    recovery_s: float | None
    is_alive: bool

    @property
    def delivered_share(self) -> float:
        return self.delivered_rps / self.offered_rps if self.offered_rps else 0.0

    @property
    def is_ok(self) -> bool:
        """Alive, no 5xx but 503, and back to normal within RECOVERY_BAR_S."""
        return (self.is_alive and self.other_5xx == 0 and self.recovery_s is not None
                and self.recovery_s <= RECOVERY_BAR_S)


def recovered_after(probes: list[Probe], threshold_ms: float,
                    run: int = RECOVERED_RUN) -> float | None:
    """The first probe within threshold that starts `run` 2xx probes with median within it.

    The median forgives one stray slow probe after recovery (the machine is shared);
    the first probe itself must be normal, so recovery is never dated to a slow one.
    """
    for index in range(len(probes) - run + 1):
        window = probes[index:index + run]
        if (window[0].ms <= threshold_ms and all(200 <= p.status < 300 for p in window)
                and statistics.median(p.ms for p in window) <= threshold_ms):
            return window[0].at_s
    return None


def summarize(name: str, capacity_rps: float, load: H2loadResult, samples: list[Sample],
              baseline: list[Probe], after: list[Probe], recovery_factor: float,
              is_alive: bool, cores_busy: float = float("nan")) -> OverloadRow:
    """One mode's row from its raw figures.

    cores_busy: the share of the target's cores that was busy over the load, all work
    counted; what the target did not spend of it is other work (another program).
    """
    logged = sum(load.log.statuses.values())
    failed = load.log.statuses.get(-1, 0)
    during = [s for s in samples if 0 <= s.at_s <= load.seconds]
    cpu = (during[-1].cpu_s - during[0].cpu_s) / (during[-1].at_s - during[0].at_s) \
        if len(during) > 1 and during[-1].at_s > during[0].at_s else 0.0
    baseline_ms = statistics.median(p.ms for p in baseline if 200 <= p.status < 300)
    return OverloadRow(
        name=name, capacity_rps=capacity_rps, offered_rps=load.offered_rps,
        delivered_rps=load.delivered_rps, ok_rps=load.count(200, 300) / load.seconds,
        shed_share=load.log.statuses.get(503, 0) / logged if logged else 0.0,
        other_5xx=load.count(500, 600) - load.log.statuses.get(503, 0),
        other_status=load.count(0, 200) + load.count(300, 500),
        errors=failed + load.errored, timeouts=load.timeout,
        ok_p50_ms=load.log.ok_p50_ms, ok_p99_ms=load.log.ok_p99_ms,
        rss_before_mb=samples[0].rss_bytes / MB if samples else 0.0,
        rss_peak_mb=max((s.rss_bytes for s in samples), default=0) / MB,
        rss_after_mb=samples[-1].rss_bytes / MB if samples else 0.0,
        cpu_share=cpu, others_share=max(0.0, cores_busy - cpu), baseline_ms=baseline_ms,
        recovery_s=recovered_after(after, recovery_factor * baseline_ms),
        is_alive=is_alive,
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def format_markdown(rows: list[OverloadRow], skipped: dict[str, str]) -> list[str]:
    """The results table (and the modes left out, with why) as Markdown lines."""
    lines = ["| mode | capacity req/s | offered req/s | delivered req/s | 2xx req/s "
             "| 503 share | other 5xx | errors / timeouts | 2xx p50 / p99 ms "
             "| RSS before / peak / after MB | target CPU | other work on its CPU | baseline ms "
             "| recovered after | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        recovery = "not within the watch" if r.recovery_s is None else f"{r.recovery_s:.1f} s"
        if not r.is_alive:
            recovery = "DIED"
        lines.append(
            f"| {r.name} | {r.capacity_rps:,.0f} | {r.offered_rps:,.0f} | "
            f"{r.delivered_rps:,.0f} ({r.delivered_share:.0%}) | {r.ok_rps:,.0f} | "
            f"{r.shed_share:.0%} | {r.other_5xx} | {r.errors} / {r.timeouts} | "
            f"{_ms(r.ok_p50_ms)} / {_ms(r.ok_p99_ms)} | "
            f"{r.rss_before_mb:.0f} / {r.rss_peak_mb:.0f} / {r.rss_after_mb:.0f} | "
            f"{r.cpu_share:.2f} | {r.others_share:.0%} | {r.baseline_ms:.2f} | {recovery} | "
            f"{'yes' if r.is_ok else 'NO'} |")
    lines += [f"- {name}: {'' if why.startswith('FAILED') else 'skipped, '}{why}"
              for name, why in skipped.items()]
    return lines


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
                  args: argparse.Namespace, clients: int, folder: Path,
                  target_cpus: tuple[int, ...] = ()) -> dict[str, Any]:
    """Capacity, baseline, overload and recovery of one running target; the raw record."""
    url = f"{target.url}/api/me"
    run_wrk(url, 2, args.connections, headers=headers)  # warm-up, discarded
    capacity = run_wrk(url, args.capacity_seconds, args.connections, headers=headers)
    if capacity.non_2xx or capacity.socket_errors:
        raise RuntimeError(f"{name}: wrk saw errors at capacity: {capacity}")
    print(f"      capacity {capacity.rps:,.0f} req/s (wrk, {args.connections} connections, "
          f"{args.capacity_seconds} s, p99 {capacity.p99_ms:.1f} ms)", flush=True)
    time.sleep(1)  # let the loop go idle before the baseline
    baseline = probe(url, headers, 2.0, time.monotonic())
    offered = args.factor * capacity.rps
    print(f"      baseline {statistics.median(p.ms for p in baseline):.2f} ms; offering "
          f"{offered:,.0f} req/s for {args.seconds} s over {clients} connections", flush=True)
    sampler = ResourceSampler(target.pid).start()
    cores_before = psutil.cpu_times(percpu=True)
    log_path = folder / f"{name}-h2load.log"
    load = run_h2load(url, args.seconds, clients, offered / clients, log_path, headers=headers)
    stopped = time.monotonic()
    cores = busy_shares(cores_before, psutil.cpu_times(percpu=True))
    cores_busy = sum(cores[c] for c in target_cpus) if target_cpus else float("nan")
    after = probe(url, headers, args.watch, stopped,
                  stop_when_recovered_below=args.recovery_factor
                  * statistics.median(p.ms for p in baseline if 200 <= p.status < 300))
    samples = sampler.stop()  # at_s from the sampler's start, just before h2load's
    is_alive = target.is_alive()
    with log_path.open("rb") as raw, gzip.open(f"{log_path}.gz", "wb") as packed:
        shutil.copyfileobj(raw, packed)  # every request's start, status and µs, kept
    log_path.unlink()
    row = summarize(name, capacity.rps, load, samples, baseline, after, args.recovery_factor,
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


def cmd_bench_overload(args: argparse.Namespace) -> int:
    """Drive each mode at 3x its capacity open-loop, then time its recovery."""
    limit = args.max_concurrency if args.max_concurrency is not None \
        else Settings.from_env().max_concurrency
    # More connections than request slots, or nothing is ever shed (over HTTP/1.1 each
    # connection carries one request at a time); fewer than uvicorn's connection bound
    # (CONNECTIONS_PER_REQUEST_SLOT x), so the bound measured is the one on requests.
    clients = args.clients or max(CLIENTS_PER_REQUEST_SLOT * limit, 64)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(args.results) / f"bench-overload-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    chosen = {name: MODES[name] for name in (args.only or MODES)}
    skipped: dict[str, str] = {}
    if not service_answers(REDIS_URL, 6379):
        for name in [n for n, env in chosen.items() if env.get("STORE") == "redis"]:
            skipped[name] = f"Redis does not answer at {REDIS_URL}"
            del chosen[name]
    placement = plan_placement(not args.no_pin)
    record: dict[str, Any] = {
        "metadata": collect_metadata(), "h2load": h2load_version(),
        "placement": placement.describe(), "max_concurrency": limit, "clients": clients,
        "factor": args.factor, "seconds": args.seconds, "recovery_factor": args.recovery_factor,
        "skipped": skipped, "modes": {},
    }
    rows: list[OverloadRow] = []
    failed: dict[str, str] = {}
    everything = set(placement.target_cpus) | set(placement.generator_cpus)
    minutes = len(chosen) * (args.seconds + SECONDS_PER_MODE + args.capacity_seconds) / 60
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
                measured = overload_mode(name, target, headers, args, clients, folder,
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
            write_json(folder / "bench-overload.json", record)
    record["failed"] = failed
    write_json(folder / "bench-overload.json", record)
    print("\n".join(format_markdown(rows, {**skipped, **failed})))
    print(f"raw figures: {folder / 'bench-overload.json'}")
    return 0 if all(r.is_ok for r in rows) and not failed else 1


def add_parser(sub: Any) -> None:
    """Register `authbench bench-overload`."""
    parser = sub.add_parser("bench-overload", help=cmd_bench_overload.__doc__,
                            description=cmd_bench_overload.__doc__)
    parser.add_argument("--only", nargs="*", choices=list(MODES))
    parser.add_argument("--seconds", type=int, default=30, help="overload duration")
    parser.add_argument("--factor", type=float, default=3.0, help="offered load / capacity")
    parser.add_argument("--capacity-seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32, help="wrk's, for capacity")
    parser.add_argument("--max-concurrency", type=int,
                        help="the targets' MAX_CONCURRENCY (default: the targets' default)")
    parser.add_argument("--clients", type=int,
                        help="h2load connections (default: 3 x MAX_CONCURRENCY, at least 64)")
    parser.add_argument("--recovery-factor", type=float, default=1.5,
                        help="recovered: latency back within this x the baseline")
    parser.add_argument("--watch", type=float, default=10.0,
                        help="seconds to probe after the load at most")
    parser.add_argument("--results", default="results")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the target and the generators share every CPU")
    parser.set_defaults(handler=cmd_bench_overload)
