"""N target nodes as separate uvicorn processes, behind HAProxy when it is installed."""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from authbench.infra.haproxy import haproxy_config, haproxy_path, start_haproxy
from authbench.infra.launcher import READY_TIMEOUT, TargetFailed, TargetProcess, stop_process, tail
from authbench.infra.ports import LOOPBACK, free_port

MAXCONN = 10_000


def balancer_maxconn(wanted: int = MAXCONN) -> int:
    """HAProxy's maxconn, kept under the file-descriptor limit.

    HAProxy needs about two descriptors per connection and refuses to start when it
    cannot raise its limit that far ("Cannot raise FD limit"), e.g. under a hard
    limit of 20000 with maxconn 10000.
    """
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return wanted
    return max(64, min(wanted, (hard - 200) // 2))


class Topology:
    """Nodes plus the way load reaches them: 'single', 'haproxy' or 'client-side'."""

    def __init__(self, env: Mapping[str, str], nodes: int, folder: Path,
                 balance: str = "roundrobin", use_haproxy: bool = True) -> None:
        self.folder = folder
        self.balance = balance
        self.targets = [TargetProcess(env, log_path=folder / f"node-{i + 1}.log")
                        for i in range(nodes)]
        if nodes == 1:
            self.kind = "single"
        elif use_haproxy and haproxy_path() is not None:
            self.kind = "haproxy"
        else:
            self.kind = "client-side"
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.lb_port: int | None = None

    @property
    def node_urls(self) -> list[str]:
        return [t.url for t in self.targets]

    @property
    def entry_url(self) -> str:
        """Where load goes: the balancer, or the first node."""
        if self.lb_port is not None:
            return f"http://{LOOPBACK}:{self.lb_port}"
        return self.targets[0].url

    def describe(self) -> dict[str, Any]:
        """What ran, for cell.json."""
        return {"kind": self.kind, "nodes": len(self.targets), "balance": self.balance,
                "entry_url": self.entry_url, "node_urls": self.node_urls,
                "node_pids": [t.pid for t in self.targets if t.process is not None]}

    def start(self) -> None:
        for target in self.targets:
            target.start()
        for target in self.targets:
            target.wait_ready()
        if self.kind == "haproxy":
            self.lb_port = free_port()
            servers = [(f"node{i + 1}", f"{t.host}:{t.port}") for i, t in enumerate(self.targets)]
            config = haproxy_config(f"{LOOPBACK}:{self.lb_port}", servers, self.balance,
                                    maxconn=balancer_maxconn())
            self.haproxy = start_haproxy(config, self.folder)
            self._wait_for_balancer()

    def _wait_for_balancer(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        up: set[int] = set()
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.haproxy is not None and self.haproxy.poll() is not None:
                    raise TargetFailed(f"haproxy exited:\n{tail(self.folder / 'haproxy.log')}")
                try:
                    answer = client.get(f"{self.entry_url}/health")
                    if answer.status_code == 200:
                        up.add(answer.json()["pid"])
                        if len(up) == len(self.targets) or self.balance == "sticky":
                            return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise TargetFailed(f"haproxy on port {self.lb_port} did not reach every node "
                           f"({len(up)} of {len(self.targets)} answered)")

    def dead_nodes(self) -> list[str]:
        """A line per node (or balancer) that has exited, with its last log lines."""
        dead = []
        for index, target in enumerate(self.targets, 1):
            if not target.is_alive():
                code = target.process.returncode if target.process else "?"
                dead.append(f"node {index} (port {target.port}) exited with code {code}: "
                            f"{tail(target.log_path, 5)}")
        if self.haproxy is not None and self.haproxy.poll() is not None:
            dead.append(f"haproxy exited with code {self.haproxy.returncode}")
        return dead

    def stop(self) -> None:
        """Stop the balancer and every node; they shut down together, and a failure
        to stop one still stops the rest."""
        processes = [p for p in (self.haproxy, *(t.process for t in self.targets))
                     if p is not None]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        with ExitStack() as stack:
            for process in processes:
                stack.callback(stop_process, process)

    def __enter__(self) -> Topology:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
