"""Run h2load (nghttp2's load tool) open-loop over HTTP/1.1 and read its own counts.

`--rps` gives each connection a fixed request rate for a fixed duration (`-D`): an
open loop, as long as the server keeps the connections. Requests a busy connection
cannot send yet wait in h2load and go out as soon as it is free, so the rate the
server saw is what h2load started, never more than offered; both are recorded.
Every request's status and latency come from h2load's `--log-file`.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUMMARY = re.compile(
    r"requests: (?P<total>\d+) total, (?P<started>\d+) started, (?P<done>\d+) done, "
    r"(?P<succeeded>\d+) succeeded, (?P<failed>\d+) failed, (?P<errored>\d+) errored, "
    r"(?P<timeout>\d+) timeout")
STOPPED = "Stopped all clients"
FAILED_STREAM = -1  # the status h2load's log gives a request that got no response


class H2loadMissing(RuntimeError):
    """h2load is not installed."""


@dataclass(frozen=True)
class LogSummary:
    """What h2load's per-request log says: statuses, 2xx latency, and each second."""

    statuses: dict[int, int]
    ok_p50_ms: float | None
    ok_p99_ms: float | None
    # one row per second from the first request: [2xx, 503, other answers, failed streams]
    per_second: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True)
class H2loadResult:
    """One h2load run: what was offered, what it started, and how it was answered."""

    seconds: float
    clients: int
    rps_per_client: float
    started: int
    done: int
    errored: int
    timeout: int
    log: LogSummary
    is_summary_lost: bool = False  # h2load died at exit: counts come from its log alone

    @property
    def offered_rps(self) -> float:
        return self.clients * self.rps_per_client

    @property
    def delivered_rps(self) -> float:
        """Requests h2load started per second of its duration: what the server was sent."""
        return self.started / self.seconds

    def count(self, low: int, high: int) -> int:
        """Responses with a status in [low, high)."""
        return sum(n for status, n in self.log.statuses.items() if low <= status < high)

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "clients": self.clients,
                "rps_per_client": self.rps_per_client, "offered_rps": self.offered_rps,
                "started": self.started, "done": self.done, "errored": self.errored,
                "timeout": self.timeout, "delivered_rps": self.delivered_rps,
                "is_summary_lost": self.is_summary_lost,
                "statuses": {str(k): v for k, v in sorted(self.log.statuses.items())},
                "ok_p50_ms": self.log.ok_p50_ms, "ok_p99_ms": self.log.ok_p99_ms,
                "per_second": self.log.per_second}


def percentile(sorted_values: list[int], share: float) -> float:
    """The nearest-rank percentile of sorted values (share in 0..1)."""
    rank = max(1, math.ceil(share * len(sorted_values)))
    return float(sorted_values[rank - 1])


def read_log(lines: list[str]) -> LogSummary:
    """Summarize h2load's log lines: start µs since the epoch, status, µs to the end."""
    statuses: Counter[int] = Counter()
    ok_us: list[int] = []
    rows: list[list[int]] = []
    first: int | None = None
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        start, status, took = int(parts[0]), int(parts[1]), int(parts[2])
        first = start if first is None else min(first, start)
        statuses[status] += 1
        if 200 <= status < 300:
            ok_us.append(took)
    if first is not None:
        for line in lines:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            second, status = (int(parts[0]) - first) // 1_000_000, int(parts[1])
            while len(rows) <= second:
                rows.append([0, 0, 0, 0])
            column = (0 if 200 <= status < 300 else 1 if status == 503
                      else 3 if status == FAILED_STREAM else 2)
            rows[second][column] += 1
    ok_us.sort()
    return LogSummary(
        statuses=dict(statuses),
        ok_p50_ms=percentile(ok_us, 0.50) / 1000 if ok_us else None,
        ok_p99_ms=percentile(ok_us, 0.99) / 1000 if ok_us else None,
        per_second=rows,
    )


def require_h2load() -> str:
    """h2load's path; H2loadMissing, with how to install it, when it is not on PATH."""
    h2load = shutil.which("h2load")
    if h2load is None:
        raise H2loadMissing("h2load is not installed (Debian/Ubuntu: apt-get install "
                            "nghttp2-client)")
    return h2load


def h2load_command(url: str, seconds: int, clients: int, rps_per_client: float,
                   log_path: Path, headers: dict[str, str] | None = None,
                   body_path: Path | None = None, request_timeout: int = 10) -> list[str]:
    """h2load over HTTP/1.1, one thread, `clients` connections at a rate each."""
    command = [require_h2load(), "--h1", "-t", "1", "-c", str(clients),
               "--rps", f"{rps_per_client:.4f}", "-D", str(seconds),
               "-N", str(request_timeout), f"--log-file={log_path}"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if body_path is not None:
        command += ["-d", str(body_path)]
    return [*command, url]


def run_h2load(url: str, seconds: int, clients: int, rps_per_client: float, log_path: Path,
               headers: dict[str, str] | None = None, body_path: Path | None = None,
               pid_seen: Callable[[int], None] | None = None) -> H2loadResult:
    """Run h2load to its end; raise H2loadMissing or RuntimeError with its output.

    pid_seen, when given, is called with h2load's pid as soon as it runs (to pin it).
    """
    log_path.unlink(missing_ok=True)  # h2load appends
    command = h2load_command(url, seconds, clients, rps_per_client, log_path, headers,
                             body_path)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        if pid_seen is not None:
            pid_seen(process.pid)
        try:
            output, _ = process.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise RuntimeError(f"h2load did not end: {output[-2000:]}") from None
        except BaseException:  # Ctrl-C, SIGTERM: h2load must not outlive the command
            process.kill()
            process.wait()
            raise
    found = SUMMARY.search(output)
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    if found is not None and process.returncode == 0:
        return H2loadResult(
            seconds=float(seconds), clients=clients, rps_per_client=rps_per_client,
            started=int(found["started"]), done=int(found["done"]),
            errored=int(found["errored"]), timeout=int(found["timeout"]),
            log=read_log(lines),
        )
    if STOPPED in output and lines:
        # h2load 1.52 sometimes aborts in libev while closing its connections, after the
        # measured duration: its summary is lost, the per-request log is not.
        return H2loadResult(
            seconds=float(seconds), clients=clients, rps_per_client=rps_per_client,
            started=len(lines), done=len(lines), errored=0, timeout=0,
            log=read_log(lines), is_summary_lost=True,
        )
    raise RuntimeError(f"h2load failed ({process.returncode}): {output[-2000:]}")
