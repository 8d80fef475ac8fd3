"""`authbench bench-targets`: /noauth against /api/me on the same server, with wrk.

The ratio of the two is the cost of the auth step; the Server-Timing sums tell
whether that drop is explained by the time spent in the auth step itself.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from analysis.data.formats import TARGETS
from authbench.bench.wrk import WrkResult, run_wrk
from authbench.infra.launcher import TargetProcess
from authbench.run.placement import plan_placement

RESULT_FILE = "bench-targets.json"

# name -> (target environment, the bar on req/s(/api/me) / req/s(/noauth) it must reach)
CONFIGS: dict[str, tuple[dict[str, str], float | None]] = {
    "none": ({"AUTH_MODE": "none"}, None),
    "jwt-HS256": ({"AUTH_MODE": "jwt", "JWT_ALG": "HS256"}, 0.70),
    "jwt-HS256-cache": ({"AUTH_MODE": "jwt", "JWT_ALG": "HS256", "VERIFY_CACHE": "10000"}, 0.70),
    "jwt-HS256-joserfc": ({"AUTH_MODE": "jwt", "JWT_ALG": "HS256", "JWT_LIB": "joserfc"}, None),
    "session-memory": ({"AUTH_MODE": "session", "STORE": "memory"}, 0.90),
    "session-redis": ({"AUTH_MODE": "session", "STORE": "redis"}, 0.55),
}


@dataclass(frozen=True)
class Comparison:
    """Median figures over the rounds for one configuration."""

    name: str
    noauth_rps: float
    me_rps: float
    ratio: float
    bar: float | None
    drop_us: float  # per-request time added by /api/me: 1/me_rps - 1/noauth_rps
    auth_us: float  # mean server-side auth time (Server-Timing), one connection: no queueing
    auth_loaded_us: float  # the same under the full load: includes waiting for the loop
    explained: float  # auth_us / drop_us: 1.0 = the drop is exactly the auth step
    me_p99_ms: float
    noauth_p99_ms: float
    cpu_drop_us: float  # target CPU per /api/me request minus per /noauth request

    @property
    def cpu_explained(self) -> float:
        """cpu_drop_us / drop_us: the share of the drop that is the server's extra CPU."""
        return self.cpu_drop_us / self.drop_us if self.drop_us > 0 else float("nan")

    @property
    def meets_bar(self) -> bool | None:
        return None if self.bar is None else self.ratio >= self.bar


def credential_headers(url: str, mode: str) -> dict[str, str]:
    """Log in once and return the headers that carry the credential."""
    if mode == "none":
        return {}
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/auth/login", json={"username": "user1", "password": "pw-user1"})
        answer.raise_for_status()
        if mode == "session":
            return {"Cookie": f"sid={answer.cookies['sid']}"}
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def summarize(name: str, bar: float | None, noauth: list[WrkResult],
              me: list[WrkResult], serial: list[WrkResult],
              cpu_us: dict[str, list[float]] | None = None) -> Comparison:
    """Medians over rounds; the ratio is taken per round (same moment), then the median.

    Under load the auth step's wall time includes waiting while the event loop serves
    other requests (an awaited store call yields), so the drop is compared with the
    auth time measured over one connection, where wall time is the step's own cost.
    """
    ratios = [m.rps / n.rps for n, m in zip(noauth, me, strict=True)]
    noauth_rps = statistics.median(r.rps for r in noauth)
    me_rps = statistics.median(r.rps for r in me)
    drops = [1e6 / m.rps - 1e6 / n.rps for n, m in zip(noauth, me, strict=True)]
    auth = statistics.median((s.auth_ms_mean or 0.0) * 1000 for s in serial)
    loaded = statistics.median((m.auth_ms_mean or 0.0) * 1000 for m in me)
    drop = statistics.median(drops)
    return Comparison(
        name=name, noauth_rps=noauth_rps, me_rps=me_rps, ratio=statistics.median(ratios),
        bar=bar, drop_us=drop, auth_us=auth, auth_loaded_us=loaded,
        explained=auth / drop if drop > 0 else float("nan"),
        me_p99_ms=statistics.median(r.p99_ms for r in me),
        noauth_p99_ms=statistics.median(r.p99_ms for r in noauth),
        cpu_drop_us=(statistics.median(cpu_us["me"]) - statistics.median(cpu_us["noauth"]))
        if cpu_us else float("nan"),
    )


def format_markdown(rows: list[Comparison]) -> list[str]:
    """The results table as Markdown lines."""
    lines = ["| config | /noauth req/s | /api/me req/s | ratio | bar | drop µs/req "
             "| auth µs, 1 conn | explained | server CPU µs/req added | CPU explained "
             "| auth µs under load | p99 /api/me ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bar = "-" if r.bar is None else f"≥ {r.bar:.2f} {'ok' if r.meets_bar else 'MISSED'}"
        lines.append(f"| {r.name} | {r.noauth_rps:,.0f} | {r.me_rps:,.0f} | {r.ratio:.2f} | "
                     f"{bar} | {r.drop_us:.1f} | {r.auth_us:.1f} | {r.explained:.2f} | "
                     f"{r.cpu_drop_us:.1f} | {r.cpu_explained:.2f} | "
                     f"{r.auth_loaded_us:.1f} | {r.me_p99_ms:.2f} |")
    return lines


@dataclass(frozen=True)
class TargetBenchConfig:
    """What bench-targets measures; the defaults are the CLI's."""

    only: tuple[str, ...] = ()  # names in CONFIGS; empty: all
    seconds: int = 8
    warmup: int = 2
    rounds: int = 3
    connections: int = 32
    pin: bool = True  # target and wrk on disjoint CPUs


def run_bench_targets(config: TargetBenchConfig, folder: Path) -> list[Comparison]:
    """Every chosen configuration's rounds; bench-targets.json into folder; the rows."""
    chosen = {name: CONFIGS[name] for name in (config.only or CONFIGS)}
    raw: dict[str, dict[str, list[WrkResult]]] = {
        n: {"noauth": [], "me": [], "serial": []} for n in chosen
    }
    cpu: dict[str, dict[str, list[float]]] = {n: {"noauth": [], "me": []} for n in chosen}
    targets: dict[str, tuple[TargetProcess, dict[str, str]]] = {}
    # As in `authbench run`: the target on its CPUs, wrk (a child of this process) on the rest.
    placement = plan_placement(config.pin)
    try:
        for name, (env, _) in chosen.items():
            target = TargetProcess(env, log_path=folder / f"{name}.log")
            target.start()
            target.wait_ready()
            targets[name] = (target, credential_headers(target.url, env["AUTH_MODE"]))
            placement.pin_target(target.pid)
        if placement.is_pinned:
            os.sched_setaffinity(0, placement.generator_cpus)
        for round_number in range(1, config.rounds + 1):
            for name, (target, headers) in targets.items():
                for path, key in (("/noauth", "noauth"), ("/api/me", "me")):
                    run_wrk(target.url + path, config.warmup, config.connections,
                            headers=headers)
                    process = psutil.Process(target.pid)
                    before = process.cpu_times()
                    result = run_wrk(target.url + path, config.seconds, config.connections,
                                     headers=headers)
                    after = process.cpu_times()
                    spent = (after.user - before.user) + (after.system - before.system)
                    cpu[name][key].append(spent * 1e6 / result.requests)
                    if result.non_2xx or result.socket_errors:
                        raise RuntimeError(f"{name} {path}: {result}")
                    raw[name][key].append(result)
                    print(f"round {round_number}/{config.rounds} {name:<15} {path:<8} "
                          f"{result.rps:>8,.0f} req/s  p99 {result.p99_ms:.2f} ms", flush=True)
                raw[name]["serial"].append(
                    run_wrk(target.url + "/api/me", config.warmup, 1, headers=headers)
                )
    finally:
        os.sched_setaffinity(0, set(placement.target_cpus) | set(placement.generator_cpus))
        for target, _ in targets.values():
            target.stop()
    rows = [
        summarize(n, chosen[n][1], raw[n]["noauth"], raw[n]["me"], raw[n]["serial"], cpu[n])
        for n in chosen
    ]
    record: dict[str, Any] = {
        "format": TARGETS.current, "connections": config.connections,
        "seconds": config.seconds, "rounds": config.rounds,
        "placement": placement.describe(),
        "raw": {n: {k: [asdict(r) for r in v] for k, v in d.items()} for n, d in raw.items()},
        "target_cpu_us_per_request": cpu,
        "summary": [asdict(r) for r in rows],
    }
    (folder / RESULT_FILE).write_text(json.dumps(record, indent=2))
    return rows
