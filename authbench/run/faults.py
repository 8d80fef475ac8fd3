"""Faults inside a measured window: the store stops, loses its data or stalls; a node dies.

A cell with a `fault` gets a FaultInjector from its rig. A Redis fault needs a Redis the
run may break: the injector starts a private redis-server (own port, own folder) before
the targets, and they use it (STORE_URL); the shared Redis is never touched. A
PostgreSQL fault terminates only the backends of the cell's own targets, found by the
application_name the targets set (authbench:<namespace>).

The fault starts FAULT_AT seconds into the measured window and lasts FAULT_SECONDS:

- redis-restart: redis-server stopped (SIGTERM: it writes its snapshot), started again
  on the same port, with its data;
- redis-restart-empty: the same without persistence: it comes back empty;
- redis-slow: DEBUG SLEEP: Redis answers nothing until the sleep ends, every command
  waits up to FAULT_SECONDS, far over the targets' STORE_TIMEOUT;
- postgres-terminate: pg_terminate_backend on the cell's backends at the start and every
  TERMINATE_EVERY seconds until the end (new connections are killed too);
- node-kill: SIGKILL the last node; started again on the same port.

`ended` in cell.json is when the store or node answered again; recovery is measured
from it. Injection runs on the main thread (measure calls `inject`, which returns once
the fault has ended): a node restarted from another thread would stop with that thread
(authbench.infra.children.die_with_parent_env).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from authbench.infra.launcher import TargetProcess
from authbench.infra.ports import LOOPBACK, free_port
from authbench.run.cell import Cell
from authbench.run.locustrun import Window

FAULT_AT = 5.0  # seconds into the measured window
FAULT_SECONDS = 5.0
TERMINATE_EVERY = 0.5  # seconds between rounds of pg_terminate_backend
REDIS_READY_WITHIN = 15.0
PR_SET_PDEATHSIG = 1


class FaultError(RuntimeError):
    """The fault could not be applied or ended (redis-server would not restart...)."""


def application_name(namespace: str) -> str:
    """The application_name of a target's PostgreSQL connections (targets/stores/postgres.py)."""
    return f"authbench:{namespace}"


def _die_with_us() -> None:  # pragma: no cover (runs in the child, before exec)
    """A redis-server started by a rig stops when the runner dies, even by SIGKILL."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM),
                                    ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


class PrivateRedis:
    """A redis-server of the rig's own, restartable on the same port."""

    def __init__(self, log_path: Path, is_persistent: bool) -> None:
        self.binary = shutil.which("redis-server") or ""
        self.log_path = log_path
        self.is_persistent = is_persistent
        self.folder = Path(tempfile.mkdtemp(prefix="authbench-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def command(self) -> list[str]:
        # Persistence: a snapshot on shutdown (SIGTERM), loaded at start. Without: nothing
        # is written, so a restart comes back empty.
        save = ["--save", "3600 1"] if self.is_persistent else ["--save", ""]
        return [self.binary, "--port", str(self.port), "--bind", LOOPBACK, *save,
                "--appendonly", "no", "--dir", str(self.folder),
                "--enable-debug-command", "local"]

    def start(self) -> None:
        if not self.binary:
            raise FaultError("redis faults need redis-server installed (the cell starts its "
                             "own; the shared Redis is never touched)")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_us)
        self.wait_ready()

    def ping(self, timeout: float = 0.5) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout) as sock:
                sock.settimeout(timeout)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + REDIS_READY_WITHIN
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise FaultError(f"private redis-server exited with {self.process.returncode}")
            if self.ping():
                return
            time.sleep(0.02)
        raise FaultError(f"private redis-server on port {self.port} did not answer PING")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def sleep(self, seconds: float) -> None:
        """DEBUG SLEEP: the server answers nothing for `seconds`; returns when it is over."""
        with socket.create_connection((LOOPBACK, self.port), 2.0) as sock:
            sock.settimeout(seconds + 10)
            sock.sendall(f"DEBUG SLEEP {seconds:g}\r\n".encode())
            answer = sock.recv(64)
        if not answer.startswith(b"+OK"):
            raise FaultError(f"DEBUG SLEEP refused: {answer!r}")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


async def _terminate_backends(url: str, name: str, until: float) -> int:
    """pg_terminate_backend on every backend named `name`, in rounds until `until`."""
    terminated = 0
    connection = await asyncpg.connect(url, timeout=5)
    try:
        while True:
            rows = await connection.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()", name, timeout=5)
            terminated += sum(1 for row in rows if row[0])
            if time.time() + TERMINATE_EVERY > until:
                return terminated
            await asyncio.sleep(TERMINATE_EVERY)
    finally:
        await connection.close()


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


class FaultInjector:
    """One cell's fault: what it needs before the targets start, and the fault itself."""

    def __init__(self, cell: Cell, folder: Path, store_url: str, namespace: str,
                 at: float | None = None, seconds: float | None = None) -> None:
        self.kind = cell.fault
        self.at = FAULT_AT if at is None else at  # read now: tests shorten them
        self.seconds = FAULT_SECONDS if seconds is None else seconds
        self.namespace = namespace
        self.shared_url = store_url
        self.redis: PrivateRedis | None = None
        if self.kind.startswith("redis-"):
            self.redis = PrivateRedis(folder / "redis.log",
                                      is_persistent=self.kind == "redis-restart")

    @property
    def store_url(self) -> str:
        """Where the cell's targets keep their state: the private Redis, or the shared store."""
        return self.redis.url if self.redis is not None else self.shared_url

    def start(self) -> None:
        """Before the targets: the private Redis."""
        if self.redis is not None:
            self.redis.start()

    def inject(self, window: Window, nodes: list[TargetProcess],
               pin: Callable[[int], None] = lambda pid: None) -> dict[str, Any]:
        """Wait for the fault's start in the window, apply it, end it: what cell.json keeps.

        Returns once the store or node answers again, well before the window ends."""
        started = window.measure_from + self.at
        _sleep_until(started)
        record: dict[str, Any] = {"kind": self.kind, "planned_seconds": self.seconds,
                                  "started": time.time()}
        try:
            record.update(self._apply(started + self.seconds, nodes, pin))
        except Exception as exc:  # the window still counts; the report says what went wrong
            record["error"] = f"{type(exc).__name__}: {exc}"
        record["ended"] = time.time()
        return record

    def _apply(self, until: float, nodes: list[TargetProcess],
               pin: Callable[[int], None]) -> dict[str, Any]:
        if self.kind in ("redis-restart", "redis-restart-empty"):
            assert self.redis is not None
            self.redis.stop()
            stopped = time.time()
            _sleep_until(until)
            self.redis.start()
            return {"down_at": stopped, "persistent": self.redis.is_persistent}
        if self.kind == "redis-slow":
            assert self.redis is not None
            self.redis.sleep(max(0.1, until - time.time()))
            return {}
        if self.kind == "postgres-terminate":
            name = application_name(self.namespace)
            count = asyncio.run(_terminate_backends(self.shared_url, name, until))
            return {"backends_terminated": count, "application_name": name}
        if self.kind == "node-kill":
            return self._kill_node(nodes[-1], len(nodes), until, pin)
        raise FaultError(f"unknown fault {self.kind!r}")

    @staticmethod
    def _kill_node(node: TargetProcess, number: int, until: float,
                   pin: Callable[[int], None]) -> dict[str, Any]:
        assert node.process is not None
        killed = node.pid
        node.process.kill()
        node.process.wait(10)
        killed_at = time.time()
        with contextlib.suppress(OSError):  # the restarted node writes a fresh log
            node.log_path.replace(node.log_path.with_suffix(".killed.log"))
        _sleep_until(until)
        node.start()
        node.wait_ready()
        pin(node.pid)
        return {"node": number, "port": node.port, "killed_pid": killed, "killed_at": killed_at,
                "restarted_pid": node.pid}

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()


def fault_injector(cell: Cell, folder: Path, store_url: str,
                   namespace: str) -> FaultInjector | None:
    """The cell's injector, or None for a cell without a fault."""
    return None if cell.fault == "none" else FaultInjector(cell, folder, store_url, namespace)
