"""Locust for one configuration: one process, or a master and W workers, kept up across
measured windows (loadtests.control), then stopped.

In master/worker mode every worker, the runner's own (`python -m authbench.commands.worker`)
and those started on other hosts (`authbench worker`) alike, sends each window's
histograms and CPU to the master, which writes them into the window's folder and then
workers-<seq>.json: who delivered and who did not (loadtests.gather). A window some
worker did not deliver is short, and says which worker.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authbench.infra.ports import LOOPBACK, free_port
from authbench.run.cell import Cell

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
STOP_SECONDS = 20
SIGINT_GRACE = 8  # seconds before a Locust that ignored SIGINT gets SIGTERM
LEAD_SECONDS = 0.15  # a window is announced this long before it opens (the poll is 50 ms)
HDR_GRACE = 10.0  # seconds after a window's end to wait for every process's histograms
WORKER_WAIT_SECONDS = 60  # a local worker's wait for its master to answer


class LocustFailed(RuntimeError):
    """Locust exited, or its users were not ready in time; the message has its log tail."""


@dataclass(frozen=True)
class LocustOutcome:
    """How Locust ended, and whether it warned that it ran out of CPU."""

    exit_code: int
    cpu_warnings: int
    log_tail: str
    command: list[str]


@dataclass(frozen=True)
class Window:
    """A measured window as announced to Locust (Unix times)."""

    seq: int
    folder: Path
    start: float
    measure_from: float
    measure_until: float
    rate: float = 0.0  # requests per second offered in all; 0: closed loop

    @property
    def seconds(self) -> float:
        return self.measure_until - self.measure_from


def locust_command(cell: Cell, host: str, folder: Path, run_time: float) -> list[str]:
    """The master (or single-process) command line."""
    return [
        sys.executable, "-m", "locust", "-f", str(LOADTESTS / f"{cell.scenario}.py"),
        "--headless", "--host", host, "-u", str(cell.users),
        "-r", str(cell.spawn_rate or cell.users),
        "-t", f"{round(run_time)}s",  # a backstop only: the runner stops it
        "--csv", str(folder / "locust"), "--csv-full-history",
        "--html", str(folder / "locust.html"),
        "--logfile", str(folder / "locust.log"), "--loglevel", "INFO",
        "--stop-timeout", "5", "--exit-code-on-error", "0",
    ]


class LocustProcesses:
    """Start Locust, wait until its users are ready, run windows, stop it."""

    def __init__(self, cell: Cell, host: str, folder: Path, run_time: float,
                 nodes: list[str] | None = None, node_urls: list[str] | None = None,
                 seed_users: int = 1000, external_workers: int = 0,
                 master_bind_host: str = LOOPBACK, master_bind_port: int = 5557,
                 on_spawn: Callable[[int], None] | None = None,
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.cell = cell
        self.folder = folder
        self.control = folder / "control.json"
        self.status = folder / "locust-status"
        self.env = {
            **os.environ,
            "AUTHBENCH_CONTROL": str(self.control),
            "AUTHBENCH_STATUS": str(self.status),
            "AUTHBENCH_HDR_DIR": str(folder),  # files written at exit (revocation probes)
            "AUTHBENCH_SEED_USERS": str(seed_users),
            "AUTHBENCH_NODES": ",".join(nodes or []),
            "AUTHBENCH_NODE_URLS": ",".join(node_urls or []),
            "AUTHBENCH_LOGOUT": cell.logout,
            # What the configuration is (the users label their probes with it).
            "AUTHBENCH_MODE": cell.mode,
            "AUTHBENCH_STORE": cell.store,
            **(extra_env or {}),  # e.g. AUTHBENCH_API: the adapter of an API's variant
        }
        self.command = locust_command(cell, host, folder, run_time)
        self.external_workers = external_workers
        self.master_bind_host = master_bind_host
        self.master_bind_port = master_bind_port
        self.on_spawn = on_spawn or (lambda pid: None)
        self.master: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._seq = 0
        self._is_loaded = False  # every user logged in: windows may run

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in [*([self.master] if self.master else []), *self.workers]]

    @property
    def is_distributed(self) -> bool:
        return bool(self.cell.workers or self.external_workers)

    @property
    def recording_processes(self) -> int:
        """How many processes record histograms per window (a master records none)."""
        return self.cell.workers + self.external_workers if self.is_distributed else 1

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # A resumed run reuses the folder: an old window or readiness must not be read.
        self.control.unlink(missing_ok=True)
        for stale in self.status.glob("status-*.json"):
            stale.unlink()
        try:
            self._spawn_all()
        except BaseException:
            self.stop()  # no worker left behind when a later spawn fails
            raise

    def _spawn_all(self) -> None:
        command = list(self.command)
        total_workers = self.cell.workers + self.external_workers
        if total_workers:
            # Workers started elsewhere need a port they can know; local ones take any free one.
            port = self.master_bind_port if self.external_workers else \
                free_port(self.master_bind_host)
            command += ["--master", "--expect-workers", str(total_workers),
                        "--master-bind-host", self.master_bind_host,
                        "--master-bind-port", str(port)]
            for index in range(self.cell.workers):  # as a worker on another host starts
                self.workers.append(self._spawn(
                    [sys.executable, "-m", "authbench.commands.worker",
                     "--master", f"{LOOPBACK}:{port}", "--wait", str(WORKER_WAIT_SECONDS)],
                    self.folder / f"locust-worker-{index + 1}.log"))
        self.command = command
        self.master = self._spawn(command, self.folder / "locust.stdout")

    def _spawn(self, command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.on_spawn(process.pid)
        return process

    def ready_users(self) -> int:
        """Users logged in and waiting at the gate, over every process."""
        total = 0
        for path in self.status.glob("status-*.json"):
            try:
                total += int(json.loads(path.read_text())["ready"])
            except (OSError, ValueError, KeyError):
                continue
        return total

    def dead(self) -> str | None:
        """Why Locust cannot go on (a process exited), or None. Once the users are ready, a
        worker that exits is its master's to report: its windows are short."""
        watched = [*([self.master] if self.master else []),
                   *([] if self._is_loaded else self.workers)]
        for process in watched:
            if process.poll() is not None:
                return f"locust exited with {process.returncode}: {self.log_tail()}"
        return None

    def wait_ready(self, timeout: float,
                   broken: Callable[[], str | None] = lambda: None) -> None:
        """Until every user has logged in (the load phase); LocustFailed otherwise, at once
        when Locust exits or `broken` names a reason (e.g. a target died)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (why := self.dead() or broken()) is not None:
                raise LocustFailed(why)
            if self.ready_users() >= self.cell.users:
                self._is_loaded = True
                return
            time.sleep(0.05)
        raise LocustFailed(f"only {self.ready_users()} of {self.cell.users} users were "
                           f"logged in after {timeout:.0f} s: {self.log_tail()}")

    def announce(self, folder: Path, warmup: float, duration: float,
                 rate: float = 0.0) -> Window:
        """Open a window: warm-up, then `duration` measured seconds, into folder; with a
        rate, requests arrive on a schedule (open model) rather than in a closed loop."""
        self._seq += 1
        start = time.time() + LEAD_SECONDS
        window = Window(self._seq, folder, start, start + warmup, start + warmup + duration,
                        rate)
        partial = self.control.with_suffix(".part")
        partial.write_text(json.dumps({
            "seq": window.seq, "folder": str(folder), "start": window.start,
            "measure_from": window.measure_from, "measure_until": window.measure_until,
            "rate": rate}))
        partial.replace(self.control)
        return window

    def collect(self, window: Window) -> list[Path]:
        """The window's histogram files, once every recording process's is in: in
        master/worker mode, once the master closed the window (workers-<seq>.json)."""
        deadline = window.measure_until + HDR_GRACE
        while True:
            found = [p for p in window.folder.glob("hdr-*.json") if _window_of(p) == window.seq]
            if self.is_distributed:
                if _manifest(window) is not None or time.time() > deadline:
                    return found
            elif len(found) >= self.recording_processes or time.time() > deadline:
                return found
            if (why := self.dead()) is not None:
                raise LocustFailed(why)
            time.sleep(0.02)

    def missing_workers(self, window: Window, files: list[Path]) -> list[dict[str, Any]]:
        """The workers whose data for the window never came (host, pid, client id, why);
        [] when every recording process delivered."""
        if not self.is_distributed:
            return []  # one process: its file is there, or the window failed (no histograms)
        manifest = _manifest(window)
        if manifest is not None:
            missing: list[dict[str, Any]] = manifest["missing"]
            return missing
        if len(files) >= self.recording_processes:
            return []
        return [{"client_id": None, "host": None, "pid": None,
                 "why": f"{self.recording_processes - len(files)} of "
                        f"{self.recording_processes} processes wrote no histograms within "
                        f"{HDR_GRACE:g} s of the window's end"}]

    def reported_generator(self, files: list[Path]) -> list[dict[str, Any]]:
        """The CPU that workers this host cannot sample (on another host, or not started
        here) reported over the window, as cell.json's generator entries."""
        here = socket.gethostname()
        entries = []
        for path in files:
            body = json.loads(path.read_text())
            cpu = body.get("process_cpu")
            if cpu is None or (body.get("host") == here and body.get("pid") in self.pids):
                continue  # sampled by the runner (authbench.run.metrics)
            seconds = float(cpu["cpu_seconds"])
            entries.append({"pid": body.get("pid"), "host": body.get("host"),
                            "client_id": body.get("client_id"), "is_reported": True,
                            "cpu_seconds": seconds, "peak_rss_bytes": 0,
                            "cpu_timeline": [[body["measured_from"], 0.0],
                                             [body["measured_until"], seconds]]})
        return entries

    def stop(self) -> LocustOutcome:
        """SIGINT, as Ctrl-C would (Locust then writes its stats, HTML report and files);
        SIGTERM if that has not ended it after a grace (Locust's own handler, which skips
        only the HTML report: a SIGINT that lands while gevent is busy can be lost);
        SIGKILL if it still hangs."""
        code = -1
        # The master first: it tells its workers to quit and takes their last stats.
        for group in ([self.master] if self.master else [], self.workers):
            for process in group:
                if process.poll() is None:
                    process.send_signal(_stop_signal(process.pid))
            for process in group:
                _wait_or(process, SIGINT_GRACE, signal.SIGTERM)
                _wait_or(process, STOP_SECONDS, signal.SIGKILL)
                process.wait(10)
        if self.master is not None:
            code = self.master.returncode
        log_text = self._log_text()
        return LocustOutcome(exit_code=code,
                             cpu_warnings=log_text.count("CPU usage above"),
                             log_tail=self.log_tail(), command=self.command)

    def _log_text(self) -> str:
        text = ""
        for path in [self.folder / "locust.stdout", self.folder / "locust.log",
                     *sorted(self.folder.glob("locust-worker-*.log"))]:
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])


def _wait_or(process: subprocess.Popen[bytes], seconds: float, then: signal.Signals) -> None:
    """Wait for process to exit; send `then` if it has not after seconds."""
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(then)


def _stop_signal(pid: int) -> signal.Signals:
    """SIGINT, unless the process ignores it (started from a background job of a
    non-interactive shell, it inherits SIGINT ignored): then SIGTERM, which Locust
    always handles (it skips only the HTML report)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigIgn:"):
                ignored = int(line.split()[1], 16)
                return signal.SIGTERM if ignored >> (signal.SIGINT - 1) & 1 else signal.SIGINT
    except (OSError, ValueError):
        pass
    return signal.SIGINT


def _manifest(window: Window) -> dict[str, Any] | None:
    """The master's workers-<seq>.json for the window, once written."""
    try:
        manifest: dict[str, Any] = json.loads(
            (window.folder / f"workers-{window.seq}.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest


def short_reason(seq: int, missing: list[dict[str, Any]]) -> str:
    """The reason a short window's cell records: which worker, which window, why."""
    named = "; ".join(
        f"worker {m['host']} pid {m['pid']} (client {m['client_id']}) {m['why']}"
        if m.get("client_id") else str(m["why"]) for m in missing)
    return f"short window {seq}: {named}"


def _window_of(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["window"])
    except (OSError, ValueError, KeyError):
        return None


def run_locust(cell: Cell, host: str, folder: Path, nodes: list[str] | None = None,
               seed_users: int = 1000, external_workers: int = 0,
               master_bind_host: str = LOOPBACK, master_bind_port: int = 5557,
               node_urls: list[str] | None = None) -> LocustOutcome:
    """One cell's load, start to end: log every user in, one window of the cell's warm-up
    and duration into folder, stop. (The suite runner keeps Locust up across windows.)"""
    locust = LocustProcesses(cell, host, folder, ready_timeout(cell) + cell.warmup
                             + cell.duration + 60, nodes, node_urls, seed_users,
                             external_workers, master_bind_host, master_bind_port)
    locust.start()
    try:
        locust.wait_ready(ready_timeout(cell))
        window = locust.announce(folder, cell.warmup, cell.duration, cell.offered_rate(None))
        time.sleep(max(0.0, window.measure_until - time.time()))
        locust.collect(window)
    finally:
        outcome = locust.stop()
    return outcome


def ready_timeout(cell: Cell) -> float:
    """How long users may take to log in: the KDF makes each login ~0.2 s of server CPU."""
    return 60.0 + cell.users * 1.0
