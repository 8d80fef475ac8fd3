"""Start a team's own HTTP service (an adapter's `[service]`), one process per node, and stop it."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from authbench.infra.children import PR_SET_PDEATHSIG, _running, _send
from authbench.infra.launcher import POLL_INTERVAL, tail
from authbench.infra.ports import free_port


class ServiceFailed(RuntimeError):
    """A service node exited or never became ready; the message has its last log lines."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one node of the service; {port} and {node} are filled in per node."""

    command: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    ready_path: str = "/"
    url: str = "http://127.0.0.1:{port}"
    stop_signal: str = "SIGTERM"
    ready_timeout: float = 30.0
    stop_timeout: float = 10.0

    def __post_init__(self) -> None:  # fail on reading the adapter, not at the first stop
        if not self.command or self.stop_signal not in signal.Signals.__members__:
            raise ValueError(f"bad service: command {self.command!r}, stop_signal "
                             f"{self.stop_signal!r} (an executable and SIGTERM, SIGINT, ...)")


def _fill(text: str, port: int, node: int) -> str:
    # Plain replace, not str.format: commands are full of braces of their own (JSON, shell).
    return text.replace("{port}", str(port)).replace("{node}", str(node))


def command_for(spec: ServiceSpec, port: int, node: int) -> list[str]:
    """The argv of one node: {port} and {node} replaced in every argument."""
    return [_fill(arg, port, node) for arg in spec.command]


def _die_with_us(signum: int) -> Callable[[], None] | None:
    """A preexec_fn that has the kernel send signum to the child when this process dies."""
    # The kernel signals when the starting *thread* ends, so only the main thread may ask.
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:  # resolved before fork: loading a library in the forked child can deadlock
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # pragma: no cover (runs in the child, before exec)
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), *[ctypes.c_ulong(0)] * 3)
        signal.signal(signum, signal.SIG_DFL)  # a SIG_IGN (background job's SIGINT) survives exec
        if os.getppid() != parent:  # the runner died before prctl: nothing would signal us
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _signal_group(leader: int, signum: int) -> None:
    # Even after the leader died: its group lives on while any member (a worker) runs.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signum)


def _wait_exited(processes: list[psutil.Process], deadline: float) -> list[psutil.Process]:
    # Not psutil.wait_procs: it waits for an orphan zombie's reaper (a container's slow PID 1).
    while (running := _running(processes)) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
    return running


class ServiceNode:
    """One process of the service on its own loopback port, in its own process group."""

    def __init__(self, spec: ServiceSpec, node: int, log_path: Path,
                 port: int | None = None) -> None:
        self.spec = spec
        self.node = node
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of this node."""
        return _fill(self.spec.url, self.port, self.node)

    @property
    def pid(self) -> int:
        """Pid of the started process (the group leader)."""
        assert self.process is not None, "node not started"
        return self.process.pid

    def start(self) -> None:
        """Spawn the process in a new session; does not wait (see wait_ready)."""
        if not self.spec.cwd.is_dir():
            raise ServiceFailed(f"node {self.node}: cwd {self.spec.cwd} is not a folder")
        env = {**os.environ,
               **{key: _fill(value, self.port, self.node) for key, value in self.spec.env.items()}}
        command = command_for(self.spec, self.port, self.node)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            try:
                # Its own session and group: stop() signals workers along with their master.
                self.process = subprocess.Popen(
                    command, cwd=self.spec.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_die_with_us(signal.Signals[self.spec.stop_signal]))
            except OSError as exc:
                raise ServiceFailed(f"node {self.node}: cannot run {shlex.join(command)} in "
                                    f"{self.spec.cwd}: {exc.strerror or exc}") from None

    def is_alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def exit_message(self) -> str:
        """'node N (pid P) exited with code C' (negative C: the signal that ended it)."""
        assert self.process is not None, "node not started"
        return f"node {self.node} (pid {self.pid}) exited with code {self.process.returncode}"

    def wait_ready(self) -> None:
        """Poll ready_path until it answers below 500; ServiceFailed if it exits or times out."""
        ready_url = f"{self.url.rstrip('/')}/{self.spec.ready_path.lstrip('/')}"
        deadline, last = time.monotonic() + self.spec.ready_timeout, "no try"
        # No proxies from the environment: a loopback service must be asked directly.
        with httpx.Client(verify=False, timeout=1.0, trust_env=False) as client:  # noqa: S501
            while time.monotonic() < deadline:
                if not self.is_alive():
                    self.stop()  # its children may live on (workers of a crashed master)
                    raise ServiceFailed(f"{self.exit_message()} before it was ready "
                                        f"({ready_url}):\n{tail(self.log_path)}")
                try:
                    answer = client.get(ready_url)
                    if answer.status_code < 500:
                        return
                    last = f"HTTP {answer.status_code}: {answer.text[:200]}"
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__}: {exc}"[:200]
                time.sleep(POLL_INTERVAL)
        self.stop()
        raise ServiceFailed(
            f"node {self.node} not ready at {ready_url} after {self.spec.ready_timeout:g}s "
            f"(last try: {last}); stopped it:\n{tail(self.log_path)}")

    def _tree(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            if self.is_alive():  # until we reap the leader, its pid names it and no other
                leader = psutil.Process(self.pid)
                return [leader, *leader.children(recursive=True)]
        return []

    def pids(self) -> list[int]:
        """The process and all its descendants now (zombies left out)."""
        return [process.pid for process in _running(self._tree())]

    def stop(self) -> int | None:
        """Stop the group gracefully, kill it after stop_timeout; the exit code (or None)."""
        if self.process is None:
            return None
        # Descendants taken before signalling: once the leader dies they are reparented.
        others = self._tree()[1:]
        deadline = time.monotonic() + self.spec.stop_timeout
        _signal_group(self.pid, signal.Signals[self.spec.stop_signal])
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(max(0.0, deadline - time.monotonic()))
        stubborn = _wait_exited(others, deadline)
        if self.is_alive() or stubborn:
            _signal_group(self.pid, signal.SIGKILL)
            _send(stubborn, signal.SIGKILL)  # those that left the group (their own setsid)
            self.process.wait(self.spec.stop_timeout)
            _wait_exited(stubborn, time.monotonic() + self.spec.stop_timeout)
        return self.process.returncode


class ServiceGroup:
    """The service's nodes, each on its own port, started and stopped together."""

    def __init__(self, spec: ServiceSpec, nodes: int, folder: Path) -> None:
        self.spec = spec
        ports: set[int] = set()
        while len(ports) < nodes:  # free_port may hand out the same port twice in a row
            ports.add(free_port())
        self.nodes = [ServiceNode(spec, i, folder / f"service-{i}.log", port)
                      for i, port in enumerate(ports, start=1)]

    @property
    def node_urls(self) -> list[str]:
        """Base URL of every node."""
        return [node.url for node in self.nodes]

    def start(self) -> None:  # all spawn first, so their start-ups overlap
        """Start every node, then wait for each; on any failure stop them all and re-raise."""
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                node.wait_ready()
        except BaseException:
            self.stop()
            raise

    def pids(self) -> list[int]:
        """Every node's process tree."""
        return [pid for node in self.nodes for pid in node.pids()]

    def dead_nodes(self) -> list[str]:
        """One line for each started node that has exited, with its last log line."""
        return [f"{node.exit_message()}: {tail(node.log_path, 1) or '(empty log)'}"
                for node in self.nodes if node.process is not None and not node.is_alive()]

    def describe(self) -> dict[str, Any]:
        """What ran, for cell.json."""
        return {"kind": "service", "nodes": len(self.nodes), "node_urls": self.node_urls,
                "node_pids": [n.pid for n in self.nodes if n.process is not None],
                "command": command_for(self.spec, self.nodes[0].port, 1),
                "cwd": str(self.spec.cwd)}

    def stop(self) -> None:
        """Stop every node (those never started or already dead included)."""
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> ServiceGroup:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
