"""Requests second by second: what a fault does over time, and when it is over.

Imported by a locustfile (loadtests/faults.py). Under the suite runner, a process that
runs users alone writes timeline-<host>-<pid>.json into each measured window's folder as
the window closes; a worker sends it to its master with the window's histograms, on any
host, and the master writes it (loadtests/gather.py). Second s holds the
requests that ended in [measure_from + s, measure_from + s + 1):

    ok                requests that succeeded (a probe's expected rejection included)
    unavailable       503 answers (the target failing closed, or the balancer with no node)
    rejected          a status in the adapter's `rejected` (the twins: 401) for a
                      credential nobody revoked (a replay of a revoked one excluded)
    failed            every other failure (transport errors, other status codes)
    wrongly_accepted  2xx for a credential that had been revoked (a "(revoked replay)")
    p50_ms, p99_ms, max_ms   over every request that ended in that second

Requests named "... (replay)" or "... (revoked replay)" replay logged-out credentials:
their rejection is the right answer, never counted as rejected.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests import control, gather
from loadtests.common import ADAPTER

FILE_FORMAT = "authbench-timeline/1"
KIND = "timeline"  # its files: timeline-<host>-<pid>.json
COUNTS = ("ok", "unavailable", "rejected", "failed", "wrongly_accepted")
REVOKED_REPLAY = "(revoked replay)"


def classify(name: str, status: int, is_failure: bool) -> str:
    """Which count of COUNTS a request falls into."""
    if REVOKED_REPLAY in name and 200 <= status < 300:
        return "wrongly_accepted"
    if status == 503:
        return "unavailable"
    if ADAPTER.is_rejected(status) and "replay" not in name:
        return "rejected"
    return "failed" if is_failure else "ok"


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of values (share in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


class Timeline:
    """This process's per-second counts for the current window."""

    def __init__(self) -> None:
        self.window: control.Window | None = None
        self.seconds: dict[int, dict[str, int]] = {}
        self.latencies: dict[int, list[float]] = {}

    def keep(self, window: control.Window) -> None:
        """Count the window's requests (a worker's master writes its file)."""
        self.window = window
        self.seconds = {}
        self.latencies = {}

    def on_window(self, window: control.Window) -> None:
        """Count the window's requests and write its file as it closes."""
        self.keep(window)
        gevent.spawn_later(max(0.0, window.measure_until - time.time()), self.save, window)

    def on_request(self, request_type: str, name: str, response_time: float,
                   exception: BaseException | None = None, response: Any = None,
                   **_: Any) -> None:
        window = self.window
        now = time.time()
        if window is None or not window.is_measuring(now):
            return
        second = int(now - window.measure_from)
        status = int(getattr(response, "status_code", 0) or 0)
        counts = self.seconds.setdefault(second, dict.fromkeys(COUNTS, 0))
        counts[classify(name, status, exception is not None)] += 1
        self.latencies.setdefault(second, []).append(float(response_time))

    def rows(self) -> list[dict[str, Any]]:
        """One row per second that saw a request, in order."""
        rows = []
        for second in sorted(self.seconds):
            latencies = self.latencies.get(second) or [math.nan]
            rows.append({"second": second, **self.seconds[second],
                         "p50_ms": percentile(latencies, 0.5),
                         "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies)})
        return rows

    def body(self, window: control.Window) -> dict[str, Any] | None:
        """The window's file, or None once a later window replaced it."""
        if self.window is not window:
            return None
        return {"format": FILE_FORMAT, "host": socket.gethostname(), "pid": os.getpid(),
                "window": window.seq, "measured_from": window.measure_from,
                "measured_until": window.measure_until, "seconds": self.rows()}

    def attach(self, window: control.Window) -> tuple[str, dict[str, Any]] | None:
        """In a worker: the window's file, for its master to write (loadtests.gather)."""
        body = self.body(window)
        return None if body is None else (KIND, body)

    def save(self, window: control.Window) -> None:
        body = self.body(window)
        if body is None:
            return  # a later window replaced it before it closed
        folder = Path(window.folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{KIND}-{socket.gethostname()}-{os.getpid()}.json"
        partial = target.with_suffix(".part")
        partial.write_text(json.dumps(body))
        partial.replace(target)
        self.window = None


@events.init.add_listener
def _install(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner) or os.environ.get("AUTHBENCH_CONTROL") is None:
        return  # workers record; run by hand, there are no windows to record
    timeline = Timeline()
    environment.events.request.add_listener(timeline.on_request)
    if isinstance(environment.runner, WorkerRunner):  # on any host: sent with the histograms
        gather.add_attacher(timeline.attach)
        control.on_window(timeline.keep)
    else:
        control.on_window(timeline.on_window)
