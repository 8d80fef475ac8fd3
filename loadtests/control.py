"""The runner's hand on a Locust process: a gate for the users, and measured windows.

The suite runner starts Locust once per configuration and lets its users log in
(the load phase). Then it announces measured windows by rewriting the JSON file
named by AUTHBENCH_CONTROL (atomically):

    {"seq": 3, "folder": "<where the window's files go>",
     "start": t0, "measure_from": t1, "measure_until": t2,        (Unix times)
     "rate": 0}

A window with a rate (requests per second, over all processes) is open-model load:
requests leave on a schedule that does not wait for answers (loadtests.arrivals).
Rate 0 is the closed loop: each user sends its next request when its answer is in.

Users send requests only while a window is open (t0 <= now < t2) and wait at the
gate between windows, still logged in; requests that end in [t1, t2) are measured
(loadtests.hdr), those from t0 to t1 are the warm-up. So a window is measured for
exactly its planned length whatever the logins cost, and windows of different
configurations can be interleaved without logging anybody in again.

Each process that runs users reports how many are ready (logged in) in
AUTHBENCH_STATUS/status-<host>-<pid>.json. In master/worker mode the master reads
the control file and forwards each window to its workers with Locust's own
messages, and workers report their ready users back, so workers on other hosts
need no shared files. The master sends a window as seconds from now (until its
start, its measured span's start and end), and each worker sets it on its own clock
when the message arrives: the hosts' clocks need not agree (a window opens late on a
worker by the message's transit, well under a millisecond on a LAN).

Without AUTHBENCH_CONTROL (a locustfile run by hand) the gate is always open. Workers
set AUTHBENCH_CONTROL to any value, e.g. "remote" (their master has the file).
A process whose parent (the runner) has gone quits by itself.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

# How often a process reads the control file. Every configuration of an interleaved run
# keeps its Locust process up between its windows: at 10 ms an idle one took 3 % of a
# core (12 of them, the article suite's, made 17 % of a 2-core machine look like another
# program's work and marked its windows disturbed); at 50 ms, 0.6 %.
POLL_SECONDS = 0.05
WINDOW_MESSAGE = "authbench_window"
READY_MESSAGE = "authbench_ready"


@dataclass(frozen=True)
class Window:
    """One measured window, as the runner announced it."""

    seq: int
    folder: str
    start: float
    measure_from: float
    measure_until: float
    rate: float = 0.0  # requests per second for this process; 0: closed loop

    def is_measuring(self, now: float) -> bool:
        return self.measure_from <= now < self.measure_until

    def as_offsets(self, now: float) -> dict[str, Any]:
        """The window as a master sends it: seconds from `now` (the sender's clock)."""
        return {"seq": self.seq, "folder": self.folder, "rate": self.rate,
                "until_start": self.start - now,
                "until_measure_from": self.measure_from - now,
                "until_measure_until": self.measure_until - now}

    @classmethod
    def from_offsets(cls, data: dict[str, Any], now: float) -> Window:
        """A window a master sent, set on this process's clock at `now` (its receipt)."""
        return cls(int(data["seq"]), str(data["folder"]), now + float(data["until_start"]),
                   now + float(data["until_measure_from"]),
                   now + float(data["until_measure_until"]), float(data["rate"]))


class Readiness:
    """How many of this process's users have finished on_start (e.g. their login)."""

    ready = 0


GATE = Event()
GATE.set()  # run by hand: always open; the runner's control closes it at start
_listeners: list[Callable[[Window], None]] = []
_forward_listeners: list[Callable[[Window, list[str]], None]] = []
current: Window | None = None


def on_window(listener: Callable[[Window], None]) -> None:
    """Call listener with every window this process is told about."""
    _listeners.append(listener)


def on_forward(listener: Callable[[Window, list[str]], None]) -> None:
    """On a master: call listener with every window it forwards (as the runner announced
    it, the whole rate) and the client ids of the workers it went to."""
    _forward_listeners.append(listener)


def live_workers(runner: MasterRunner) -> list[str]:
    """The client ids of the workers a master can reach (not missing, not gone)."""
    return [node.id for node in [*runner.clients.ready, *runner.clients.spawning,
                                 *runner.clients.running]]


def wait_at_gate() -> None:
    """Block this user until a window is open (returns at once when run by hand)."""
    GATE.wait()


def _open(window: Window) -> None:
    GATE.set()
    # Close at the window's end, unless a later window has been announced meanwhile.
    gevent.sleep(max(0.0, window.measure_until - time.time()))
    if current is window:
        GATE.clear()


def apply(window: Window) -> None:
    """Take a window: tell the listeners, open the gate at its start, close it at its end."""
    global current
    current = window
    for listener in _listeners:
        listener(window)
    gevent.spawn_later(max(0.0, window.start - time.time()), _open, window)


def _read(path: Path) -> Window | None:
    try:
        data = json.loads(path.read_text())
        return Window(**{k: data[k] for k in ("seq", "folder", "start", "measure_from",
                                              "measure_until")},
                      rate=float(data.get("rate", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not written yet (or a torn read): the next poll sees it


def _write_status(folder: Path, ready: int, extra: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"status-{socket.gethostname()}-{os.getpid()}.json"
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps({"ready": ready, "time": time.time(), **extra}))
    partial.replace(target)


def _watch(environment: Environment, control: Path, status: Path | None) -> None:
    """Poll the control file; forward windows to workers; report readiness; watch the parent."""
    parent = os.getppid()
    seen = -1
    reported = -1
    worker_ready: dict[str, int] = {}
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(READY_MESSAGE, lambda msg, **_: worker_ready.__setitem__(
            msg.data["client_id"], int(msg.data["ready"])))
    while True:
        if os.getppid() != parent:  # the runner is gone: nobody will stop us
            if runner is not None:
                runner.quit()
            return
        window = _read(control)
        if window is not None and window.seq != seen:
            seen = window.seq
            if isinstance(runner, MasterRunner):  # each worker offers its share of the rate
                workers = live_workers(runner)
                share = replace(window, rate=window.rate / max(1, len(workers)))
                for client_id in workers:
                    runner.send_message(WINDOW_MESSAGE, share.as_offsets(time.time()),
                                        client_id=client_id)
                for forwarded in _forward_listeners:
                    forwarded(window, workers)
            else:
                apply(window)
        if isinstance(runner, MasterRunner):  # a worker gone takes its users with it
            live = set(live_workers(runner))
            ready = sum(n for client_id, n in worker_ready.items() if client_id in live)
        else:
            ready = Readiness.ready
        if status is not None and ready != reported:
            reported = ready
            _write_status(status, ready, {"workers": len(worker_ready)})
        gevent.sleep(POLL_SECONDS)


def _report_ready(runner: WorkerRunner) -> None:
    """A worker tells its master how many of its users are ready, when that changes."""
    reported = -1
    while True:
        if Readiness.ready != reported:
            reported = Readiness.ready
            runner.send_message(READY_MESSAGE, {"client_id": runner.client_id,
                                                "ready": reported})
        gevent.sleep(0.1)


@events.init.add_listener
def _install(environment: Environment, **_: Any) -> None:
    control = os.environ.get("AUTHBENCH_CONTROL")
    runner = environment.runner
    if control is None:
        return  # run by hand: no gate, no windows
    if isinstance(runner, WorkerRunner):  # its master forwards the windows
        GATE.clear()
        runner.register_message(WINDOW_MESSAGE, lambda msg, **_: apply(
            Window.from_offsets(msg.data, time.time())))
        environment.events.test_start.add_listener(
            lambda **_: gevent.spawn(_report_ready, runner))
        return
    GATE.clear()
    status = os.environ.get("AUTHBENCH_STATUS")
    gevent.spawn(_watch, environment, Path(control), Path(status) if status else None)
