"""Exact latency: every request's unrounded time into an HDR histogram per process.

Imported by each locustfile; active only when AUTHBENCH_HDR_DIR is set (the suite
runner sets it), so the files still run by hand with plain `locust -f`.

- AUTHBENCH_HDR_DIR: where each Locust process writes hdr-<host>-<pid>.json on exit
- AUTHBENCH_WARMUP: seconds after the test starts whose requests are discarded; the
  master (or the single local runner) also resets Locust's own stats at that moment.
  This process measures from the later of that moment and the moment all of its
  users are ready (loadtests.common.Readiness), and saves when it began and ended.

Histograms hold microseconds from 1 us to 60 s with 3 significant digits; they are
saved encoded (HdrHistogram's compressed base64 form), so workers' files merge
exactly by adding histograms. Besides "METHOD name" (the client-side latency), each
response's `Server-Timing: auth;dur=<ms>` goes into "auth METHOD name": the time
the server spent in the auth step alone.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.common import Readiness

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_FIGURES = 3
FILE_FORMAT = "authbench-hdr/1"


class Recorder:
    """This process's histograms, one per 'METHOD name', plus failures counted apart."""

    def __init__(self, folder: Path, warmup: float, environment: Environment) -> None:
        self.folder = folder
        self.warmup = warmup
        self.environment = environment
        self.started: float | None = None
        self.measured_from: float | None = None
        self.last: float | None = None
        self.histograms: dict[str, HdrHistogram] = {}
        self.failures: dict[str, int] = {}

    def on_test_start(self, **_: Any) -> None:
        self.started = time.time()

    def _record(self, key: str, microseconds: float) -> None:
        histogram = self.histograms.get(key)
        if histogram is None:
            histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
            self.histograms[key] = histogram
        histogram.record_value(min(HIGHEST_US, max(LOWEST_US, round(microseconds))))

    def on_request(self, request_type: str, name: str, response_time: float,
                   exception: BaseException | None = None, response: Any = None,
                   **_: Any) -> None:
        now = time.time()
        if self.measured_from is None:
            if self.started is None or now - self.started < self.warmup or not self._all_ready():
                return
            self.measured_from = now
        self.last = now
        key = f"{request_type} {name}"
        if exception is not None:
            self.failures[key] = self.failures.get(key, 0) + 1
            return
        self._record(key, response_time * 1000)
        timing = response.headers.get("server-timing") if response is not None else None
        if timing:
            dur = _auth_duration_ms(timing)
            if dur is not None:
                self._record(f"auth {key}", dur * 1000)

    def _all_ready(self) -> bool:
        """Every user this process will run has spawned and finished on_start."""
        runner = self.environment.runner
        if runner is None or runner.user_count == 0:
            return False
        spawned_all = runner.user_count >= (runner.target_user_count or 0)
        return spawned_all and runner.user_count <= Readiness.ready

    def save(self, **_: Any) -> None:
        if not self.histograms and not self.failures:
            return  # a master records nothing: its workers do
        self.folder.mkdir(parents=True, exist_ok=True)
        body = {
            "format": FILE_FORMAT,
            "unit": "us",
            "significant_figures": SIGNIFICANT_FIGURES,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started,
            "warmup": self.warmup,
            "measured_from": self.measured_from,
            "measured_until": self.last,
            "histograms": {k: h.encode().decode() for k, h in self.histograms.items()},
            "failures": self.failures,
        }
        target = self.folder / f"hdr-{socket.gethostname()}-{os.getpid()}.json"
        partial = target.with_suffix(".part")
        partial.write_text(json.dumps(body))
        partial.replace(target)


def _auth_duration_ms(header: str) -> float | None:
    """The dur of the 'auth' metric of a Server-Timing header, in ms."""
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "auth":
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key == "dur":
                    try:
                        return float(value)
                    except ValueError:
                        return None
    return None


def _reset_stats_after_warmup(environment: Environment, warmup: float) -> None:
    gevent.sleep(warmup)
    if environment.runner is not None:
        environment.runner.stats.reset_all()


@events.init.add_listener
def _install(environment: Environment, **_: Any) -> None:
    folder = os.environ.get("AUTHBENCH_HDR_DIR")
    warmup = float(os.environ.get("AUTHBENCH_WARMUP", "0"))
    if not isinstance(environment.runner, WorkerRunner) and warmup > 0:
        environment.events.test_start.add_listener(
            lambda **_: gevent.spawn(_reset_stats_after_warmup, environment, warmup)
        )
    if folder is None or isinstance(environment.runner, MasterRunner):
        return
    recorder = Recorder(Path(folder), warmup, environment)
    environment.events.test_start.add_listener(recorder.on_test_start)
    environment.events.request.add_listener(recorder.on_request)
    environment.events.quitting.add_listener(recorder.save)
