"""The processes a command starts stop with it: on Ctrl-C, SIGTERM, SIGHUP, or its death.

Ctrl-C in a terminal reaches the whole foreground process group, so targets and Locust
stop by themselves. SIGTERM and SIGHUP (`timeout`, a cancelled CI job, `docker stop`, a
closed SSH session) reach the runner alone: StopOnSignals turns them into the Ctrl-C path
and passes the stop on to every process the command started.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

import psutil

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))  # Windows has no SIGHUP
TERMINATE_SECONDS = 5.0
PARENT_PID_ENV = "AUTHBENCH_PARENT_PID"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Stopped(KeyboardInterrupt):
    """A stop signal; a KeyboardInterrupt, so every Ctrl-C clean-up path runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    running = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def _send(processes: list[psutil.Process], signum: int) -> None:
    for process in processes:
        with contextlib.suppress(psutil.Error):  # exited in the meantime
            process.send_signal(signum)


def release_dead_terminal(fds: tuple[int, ...] = (1, 2)) -> None:
    """Point output that can no longer be written (a hung-up terminal) at /dev/null.

    After an SSH session closes, every write to its terminal fails with EIO; the clean-up
    and its progress lines must not fail with it.
    """
    for fd in fds:
        try:
            os.write(fd, b"")
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)


class StopOnSignals:
    """While active, SIGINT, SIGTERM and SIGHUP stop the command as Ctrl-C does.

    The first signal sends SIGTERM to every process started inside the block (their
    own clean-up then waits for them) and raises Stopped in the main thread. A later
    signal, during that clean-up, raises nothing: it kills those processes at once so
    the clean-up finishes (the run is still marked interrupted). On leaving, any process
    started inside the block that still runs is terminated, then killed, and reaped.
    Signals that were ignored (nohup, a background job's SIGINT) stay ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.leftovers = 0  # processes still running on leaving, stopped by the sweep
        self._me = psutil.Process()
        self._before: set[psutil.Process] = set()
        self._previous: dict[int, Any] = {}

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process a signal ended."""
        return 128 + (self.signum or signal.SIGINT)

    def started(self) -> list[psutil.Process]:
        """Processes started since entering (descendants, not those already there)."""
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:
            return []
        return [c for c in children if c not in self._before]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        release_dead_terminal()
        if self.signum is None:
            self.signum = signum
            _send(self.started(), signal.SIGTERM)
            raise Stopped(signum)
        _send(self.started(), signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.write(2, f"\n{signal.Signals(signum).name} again: the processes this run "
                        "started are killed\n".encode())

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (a command called from a thread)
        for signum in STOP_SIGNALS:
            current = signal.getsignal(signum)
            if current in (signal.SIG_DFL, signal.default_int_handler):
                self._previous[signum] = current
                signal.signal(signum, self._handle)

    def sweep(self) -> None:
        """Terminate, then kill, and reap every process started inside the block."""
        started = self.started()  # zombies too: waiting for them reaps them
        running = _running(started)
        self.leftovers += len(running)
        _send(running, signal.SIGTERM)
        _gone, stubborn = psutil.wait_procs(started, timeout=TERMINATE_SECONDS)
        _send(stubborn, signal.SIGKILL)
        psutil.wait_procs(stubborn, timeout=TERMINATE_SECONDS)

    def __enter__(self) -> StopOnSignals:
        try:
            self._before = set(self._me.children(recursive=True))
        except psutil.Error:
            self._before = set()
        self._install()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.sweep()  # handlers still set: a signal now kills, it does not cut this short
        finally:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._previous.clear()


def die_with_parent_env() -> dict[str, str]:
    """Environment that makes an `authbench serve` child stop when this process dies.

    Linux only, and only from the main thread: the kernel signals the child when the
    thread that started it ends, not the process.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return {}
    return {PARENT_PID_ENV: str(os.getpid())}


def die_with_parent() -> bool:
    """In a child started with die_with_parent_env: get SIGTERM when the parent dies.

    Returns False when the parent is already gone (the child should exit at once).
    """
    parent = os.environ.pop(PARENT_PID_ENV, "")  # never passed on to our own children
    if not parent.isdigit() or sys.platform != "linux":
        return True
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return True
    unused = ctypes.c_ulong(0)
    if prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), unused, unused, unused) != 0:
        return True
    # The parent may have died before prctl, and then nothing will signal us.
    return os.getppid() == int(parent) or psutil.pid_exists(int(parent))
