"""A master's workers: who they are, and each window's data brought in over the wire.

In master/worker mode no worker writes a file. At the end of each window a worker
sends what loadtests.hdr would have written (its histograms, failures, the open
model's counts, its own CPU over the measured span) to its master in chunks
(loadtests.wire), and the master writes it into the window's folder as
hdr-<host>-<pid>.json, the worker's host and pid, with the window's times as the
runner announced them: the same file a local process writes, so nothing downstream can
tell where a worker ran (the file's "client_id" says it).

The master expects a window's data from every worker it sent the window to. When the
last has arrived, or DEADLINE_SECONDS after the window's end (the workers' drain plus
time for the messages), it writes workers-<seq>.json into the window's folder: the
workers that delivered, and each one that did not, named (host, pid, client id) with
why: it sent nothing in time (it died or is late), or it was gone before the window
opened. The runner reads it to mark the window short. Data that comes after the
deadline is dropped and logged: the window was already closed without it.

Other per-window files travel in the same delivery: a module that would write one in
a single process registers an attacher (add_attacher) in a worker, and its body rides
under the data's "attached" key; the master writes it beside the histograms as
<kind>-<host>-<pid>.json, with the window's times as the runner announced them (the fault
timelines, loadtests/timeline.py; the revocation probes of a worker with no folder of
the run on its host, loadtests/revocation.py).

Each worker says hello on connecting (host, pid, authbench version); the master refuses
one that runs another authbench version, and the worker quits with one line.
`authbench worker` says hello before it starts Locust, too, to take its master's
settings (loadtests.wire.scenario_env) and scenario.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests import control, wire

MANIFEST_FORMAT = "authbench-workers/1"
# After a window's end: the workers' drain (loadtests.hdr.DRAIN_SECONDS, 2 s) and 3 s for
# their messages. The runner waits longer (authbench.run.locustrun.HDR_GRACE).
DEADLINE_SECONDS = 5.0
NOT_DELIVERED = "sent no data for the window within {seconds:g} s of its end (dead or late)"
GONE_BEFORE = "was gone before the window opened"

logger = logging.getLogger(__name__)
ATTACHED = "attached"  # the key of a delivery's other files: {kind: body}
# In a worker: what else each window's delivery carries, kind -> body (None: nothing).
Attacher = Callable[[control.Window], tuple[str, dict[str, Any]] | None]
ATTACHERS: list[Attacher] = []


def add_attacher(attacher: Attacher) -> None:
    """Send attacher's file with every window's data (in a worker)."""
    ATTACHERS.append(attacher)


@dataclass
class Pending:
    """A window forwarded to workers, until each has delivered or its deadline passed."""

    window: control.Window
    sent_to: list[str]
    gone: list[str]  # workers the master knew that were no longer there
    delivered: dict[str, str] = field(default_factory=dict)  # client id -> file name

    @property
    def is_complete(self) -> bool:
        return all(client_id in self.delivered for client_id in self.sent_to)


class Gatherer:
    """The master's side: hellos, each window's chunks, the files and the manifest."""

    def __init__(self, runner: MasterRunner, scenario: str) -> None:
        self.runner = runner
        self.scenario = scenario
        self.version = wire.authbench_version()
        self.workers: dict[str, dict[str, Any]] = {}  # client id -> host, pid, version
        self.assemblies: dict[str, wire.Reassembly] = {}
        self.pending: dict[int, Pending] = {}

    def install(self) -> None:
        self.runner.register_message(wire.HELLO_MESSAGE, self.on_hello)
        self.runner.register_message(wire.CHUNK_MESSAGE, self.on_chunk)
        control.on_forward(self.on_forward)

    def on_hello(self, msg: Any, **_: Any) -> None:
        data, client_id = msg.data, msg.node_id
        if data.get("is_handshake"):  # authbench worker, before it becomes a Locust worker
            self._forget_index(client_id)
            api = os.environ.get("AUTHBENCH_API")  # a path here: its contents travel
            self.runner.send_message(wire.WELCOME_MESSAGE, client_id=client_id, data={
                "version": self.version, "scenario": self.scenario,
                "env": wire.scenario_env(os.environ),
                "api": Path(api).read_text() if api else None})
            return
        if data.get("version") != self.version:
            logger.error(wire.mismatch_line(self.version, str(data.get("version"))))
            self.runner.send_message(wire.REFUSED_MESSAGE, client_id=client_id,
                                     data={"version": self.version})
            return
        self.workers[client_id] = {"client_id": client_id, "host": data.get("host"),
                                   "pid": data.get("pid"), "version": data.get("version")}

    def _forget_index(self, client_id: str) -> None:
        """Locust numbers every sender of a custom message as a worker (in a log line);
        a handshake is not one, so the real workers keep consecutive indexes."""
        index = self.runner.worker_indexes.pop(client_id, None)
        if index is not None and index == self.runner.worker_index_max - 1:
            self.runner.worker_index_max -= 1

    def on_forward(self, window: control.Window, workers: list[str]) -> None:
        known = set(self.workers) | {node.id for node in self.runner.clients.all}
        pending = Pending(window, list(workers), sorted(known - set(workers)))
        self.pending[window.seq] = pending
        deadline = window.measure_until + DEADLINE_SECONDS
        gevent.spawn_later(max(0.0, deadline - time.time()), self._close, pending)
        if not workers:
            self._close(pending)

    def on_chunk(self, msg: Any, **_: Any) -> None:
        client_id = msg.node_id
        body = self.assemblies.setdefault(client_id, wire.Reassembly()).add(msg.data)
        if body is None:
            return
        pending = self.pending.get(int(msg.data["seq"]))
        if pending is None or client_id not in pending.sent_to:
            logger.warning(f"window {msg.data['seq']}: data from {client_id} came after the "
                           "window closed (or was not sent to it), dropped")
            return
        pending.delivered[client_id] = self._write(pending, client_id, body)
        if pending.is_complete:
            self._close(pending)

    def _write(self, pending: Pending, client_id: str, body: dict[str, Any]) -> str:
        """The worker's data as the files a local process writes; the histograms' name."""
        window = pending.window
        times = {"window": window.seq, "measured_from": window.measure_from,
                 "measured_until": window.measure_until}
        attached = body.pop(ATTACHED, None) or {}
        body.update({**times, "started": window.start, "client_id": client_id})
        name = f"hdr-{body.get('host')}-{body.get('pid')}.json"
        suffix = ""
        if name in pending.delivered.values():  # two hosts of one name, one pid
            suffix = f"-{client_id[-8:]}"
            name = f"hdr-{body.get('host')}-{body.get('pid')}{suffix}.json"
        write_json(Path(window.folder) / name, body)
        for kind, other in attached.items():
            if "measured_from" in other:  # on the worker's clock: the runner's instead
                other.update(times)
            write_json(Path(window.folder) / f"{kind}-{body.get('host')}-{body.get('pid')}"
                                              f"{suffix}.json", other)
        return name

    def _identity(self, client_id: str) -> dict[str, Any]:
        known = self.workers.get(client_id, {})
        return {"client_id": client_id, "host": known.get("host"), "pid": known.get("pid")}

    def _describe(self, client_id: str, why: str) -> dict[str, Any]:
        return {**self._identity(client_id), "why": why}

    def _close(self, pending: Pending) -> None:
        """Write the window's manifest, once: who delivered, who did not and why."""
        if self.pending.get(pending.window.seq) is not pending:
            return  # closed already
        del self.pending[pending.window.seq]
        for assembly in self.assemblies.values():  # a dead worker's pieces go too
            assembly.pieces.pop(pending.window.seq, None)
        late = NOT_DELIVERED.format(seconds=DEADLINE_SECONDS)
        missing = [self._describe(c, late) for c in pending.sent_to
                   if c not in pending.delivered]
        missing += [self._describe(c, GONE_BEFORE) for c in pending.gone]
        write_json(Path(pending.window.folder) / f"workers-{pending.window.seq}.json", {
            "format": MANIFEST_FORMAT, "window": pending.window.seq,
            "expected": len(pending.sent_to) + len(pending.gone),
            "delivered": [{**self._identity(c), "file": name}
                          for c, name in sorted(pending.delivered.items())],
            "missing": missing})
        for entry in missing:
            logger.error(f"window {pending.window.seq}: worker {entry['client_id']} "
                         f"(host {entry['host']}, pid {entry['pid']}) {entry['why']}")


def write_json(path: Path, body: dict[str, Any]) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(body))
    partial.replace(path)


def send_window(runner: WorkerRunner, window: control.Window, body: dict[str, Any]) -> None:
    """A worker's window data, and the files its attachers give for the window, to its
    master, in chunks."""
    attached = dict(filter(None, (attacher(window) for attacher in ATTACHERS)))
    if attached:
        body = {**body, ATTACHED: attached}
    for chunk in wire.chunk_messages(window.seq, body):
        runner.send_message(wire.CHUNK_MESSAGE, chunk)


def _refused(environment: Environment, msg: Any) -> None:
    print(wire.mismatch_line(msg.data["version"], wire.authbench_version()), file=sys.stderr,
          flush=True)
    environment.process_exit_code = 1
    runner = environment.runner
    if runner is not None:
        gevent.spawn(runner.quit)


def install(environment: Environment) -> None:
    """The master gathers; a worker says hello and quits if refused."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        files = environment.parsed_locustfiles or []
        Gatherer(runner, Path(files[0]).name if files else "").install()
    elif isinstance(runner, WorkerRunner):
        runner.register_message(wire.REFUSED_MESSAGE,
                                lambda msg, **_: _refused(environment, msg))
        runner.send_message(wire.HELLO_MESSAGE, {
            "host": socket.gethostname(), "pid": os.getpid(),
            "version": wire.authbench_version()})
