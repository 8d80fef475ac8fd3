"""Exact latency: every measured request's unrounded time into an HDR histogram.

Imported by each locustfile. Under the suite runner, which announces measured windows
(loadtests.control), every process that runs users records the requests that ended
inside [measure_from, measure_until), so the measured seconds are exactly the planned
ones, and as the window closes hdr-<host>-<pid>.json lands in the window's folder: a
single process writes it itself; in master/worker mode each worker sends it to its
master, which writes it (loadtests.gather), so workers on other hosts lose nothing.
Without the runner (by hand, docker compose) set AUTHBENCH_HDR_DIR (and
AUTHBENCH_WARMUP, seconds discarded from the start) to record the whole run into one
file written when Locust quits.

Histograms hold microseconds from 1 us to 60 s with 3 significant digits; they are
saved encoded (HdrHistogram's compressed base64 form), so workers' files merge
exactly by adding histograms. Besides "METHOD name" (the client-side latency), each
response's Server-Timing metrics go into "<metric> METHOD name": "auth" (the auth
step's wall time), "auth-cpu" (its own CPU) and "store" (its awaited store calls).

Under a rate (open-model load, loadtests.arrivals) a request belongs to the window its
intended send time falls in, and "METHOD name" is its latency from that intended time
(corrected for coordinated omission); "service METHOD name" is the time from the actual
send, and "schedule-lag" how late requests left. The file's "open" block counts the
arrivals the schedule laid out in the measured span and those sent, and the bound and
peak of requests in flight. A window that closes with requests still in flight waits
up to DRAIN_SECONDS for them. "process_cpu" is the CPU this process used (user and
system, all its threads) over the measured span, on its own clock: the generator's
CPU, whether or not the runner can see the process.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests import arrivals, control, gather

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_FIGURES = 3
FILE_FORMAT = "authbench-hdr/3"
TIMING_METRICS = ("auth", "auth-cpu", "store")
SERVICE_PREFIX = "service "  # open model: time from the actual send
LAG_KEY = "schedule-lag"  # open model: actual send minus intended send
DRAIN_SECONDS = 2.0


class Recorder:
    """This process's histograms for the current window, failures counted apart."""

    def __init__(self) -> None:
        self.window: control.Window | None = None
        self.save_at_exit: Callable[..., None] = lambda **_: None
        self.users: Callable[[], int] = lambda: 0  # this process's users: the in-flight bound
        self.histograms: dict[str, HdrHistogram] = {}
        self.failures: dict[str, int] = {}
        self.deliver: Callable[[control.Window, dict[str, Any]], None] = write_file
        self.cpu_from: tuple[float, float] | None = None  # (CPU, monotonic) at measure_from

    def on_window(self, window: control.Window) -> None:
        self.window = window
        self.histograms = {}
        self.failures = {}
        self.cpu_from = None
        gevent.spawn_later(max(0.0, window.measure_from - time.time()), self._cpu_start, window)
        gevent.spawn_later(max(0.0, window.measure_until - time.time()),
                           self._save_after_drain, window)

    def _cpu_start(self, window: control.Window) -> None:
        if self.window is window:
            self.cpu_from = (time.process_time(), time.monotonic())

    def _cpu_used(self) -> dict[str, float] | None:
        """This process's CPU seconds since measure_from, and the seconds they span."""
        if self.cpu_from is None:
            return None
        cpu, at = self.cpu_from
        return {"cpu_seconds": round(time.process_time() - cpu, 6),
                "seconds": round(time.monotonic() - at, 6)}

    def _record(self, key: str, microseconds: float) -> None:
        histogram = self.histograms.get(key)
        if histogram is None:
            histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
            self.histograms[key] = histogram
        histogram.record_value(min(HIGHEST_US, max(LOWEST_US, round(microseconds))))

    def on_request(self, request_type: str, name: str, response_time: float,
                   exception: BaseException | None = None, response: Any = None,
                   **_: Any) -> None:
        window = self.window
        if window is None:
            return
        now = time.time()
        arrival = arrivals.current_arrival()
        if arrival is None and not window.is_measuring(now):
            return
        if arrival is not None and (arrival.schedule.window is not window
                                    or not arrival.is_measured):
            return
        key = f"{request_type} {name}"
        if exception is not None:
            self.failures[key] = self.failures.get(key, 0) + 1
            return
        if arrival is None:
            self._record(key, response_time * 1000)
        else:
            self._record(key, (now - arrival.intended) * 1_000_000)
            self._record(SERVICE_PREFIX + key, response_time * 1000)
            self._record(LAG_KEY, (now - response_time / 1000 - arrival.intended) * 1_000_000)
        header = response.headers.get("server-timing") if response is not None else None
        if header:
            for metric, ms in server_timing(header).items():
                if ms > 0 or metric != "store":  # no store call: no store histogram
                    self._record(f"{metric} {key}", ms * 1000)

    def _save_after_drain(self, window: control.Window) -> None:
        """Under a rate: wait for the measured arrivals still in flight, then save."""
        cpu = self._cpu_used() if self.window is window else None  # at the measured end
        schedule = arrivals.schedule_of(window)
        until = window.measure_until + DRAIN_SECONDS
        while schedule is not None and schedule.in_flight > 0 and time.time() < until:
            gevent.sleep(0.01)
        self.save(window, cpu)

    def save(self, window: control.Window, cpu: dict[str, float] | None = None) -> None:
        """Deliver the window's histograms (empty ones too: the runner counts them)."""
        if self.window is not window:
            return  # a later window replaced it before it closed
        body: dict[str, Any] = {
            "format": FILE_FORMAT,
            "unit": "us",
            "lowest": LOWEST_US,
            "highest": HIGHEST_US,
            "significant_figures": SIGNIFICANT_FIGURES,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "window": window.seq,
            "started": window.start,
            "measured_from": window.measure_from,
            "measured_until": window.measure_until,
            "histograms": {k: h.encode().decode() for k, h in self.histograms.items()},
            "failures": self.failures,
        }
        # A window none of whose arrivals this process took still reports its schedule.
        schedule = arrivals.schedule_of(window) or (
            arrivals.Schedule(window) if window.rate > 0 else None)
        if schedule is not None:
            body["open"] = {"rate": window.rate, "scheduled": schedule.scheduled_measured(),
                            "sent": schedule.taken_measured, "in_flight_limit": self.users(),
                            "in_flight_max": schedule.in_flight_max,
                            "in_flight_at_save": schedule.in_flight}
        if cpu is not None:
            body["process_cpu"] = cpu
        self.window = None
        self.deliver(window, body)


def write_file(window: control.Window, body: dict[str, Any]) -> None:
    """A window's histograms into its folder, by this process (no master to send them to)."""
    gather.write_json(Path(window.folder) / f"hdr-{body['host']}-{body['pid']}.json", body)


def server_timing(header: str) -> dict[str, float]:
    """The dur (ms) of each metric of TIMING_METRICS in a Server-Timing header."""
    found: dict[str, float] = {}
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name not in TIMING_METRICS:
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                with contextlib.suppress(ValueError):
                    found[name] = float(value)
    return found


def _free_running(recorder: Recorder, folder: str, warmup: float) -> None:
    """Without the runner: one window from the test's start plus the warm-up to the end."""
    now = time.time()
    window = control.Window(0, folder, now, now + warmup, math.inf)
    recorder.window = window

    def save(**_: Any) -> None:
        if recorder.window is window:
            recorder.window = control.Window(0, folder, now, now + warmup, time.time())
            recorder.save(recorder.window)

    recorder.save_at_exit = save


@events.init.add_listener
def _install(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    gather.install(environment)  # a master gathers its workers' windows; workers say hello
    if isinstance(runner, MasterRunner):
        return  # its workers record
    recorder = Recorder()
    recorder.users = lambda: runner.user_count if runner is not None else 0
    environment.events.request.add_listener(recorder.on_request)
    if os.environ.get("AUTHBENCH_CONTROL") is not None:
        if isinstance(runner, WorkerRunner):  # one path for every worker, on any host
            worker = runner
            recorder.deliver = lambda window, body: gather.send_window(worker, window, body)
        control.on_window(recorder.on_window)
        return
    folder = os.environ.get("AUTHBENCH_HDR_DIR")
    if folder is None:
        environment.events.request.remove_listener(recorder.on_request)
        return  # run by hand: nothing recorded
    warmup = float(os.environ.get("AUTHBENCH_WARMUP", "0"))
    environment.events.test_start.add_listener(
        lambda **_: _free_running(recorder, folder, warmup))
    environment.events.quitting.add_listener(lambda **kw: recorder.save_at_exit(**kw))
