"""A rig for one variant of an API authbench did not write: its nodes (started from the
adapter's [service], or already running at its urls), verified through the adapter, and
Locust driving it with the adapter's requests.

Nothing is seeded and no store is touched: the API's store is its own. Its CPU is
claimed only for processes the adapter names: the ones its [service] command started
(with their children, e.g. gunicorn's workers), or its `pids`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from adapters.schema import Adapter
from authbench.infra.service import ServiceFailed, ServiceGroup, ServiceSpec
from authbench.run.apisuite import node_places
from authbench.run.cell import Cell
from authbench.run.locustrun import LocustFailed, LocustProcesses, ready_timeout
from authbench.run.placement import Placement
from authbench.run.rig import CellFailed, Rig
from authbench.run.verify import verify_api

# How long a probe replays a logged-out credential before it calls it "still accepted"
# (within the probe cell's window, authbench.run.apisuite.PROBE_SECONDS).
PROBE_MAX_SECONDS = 2.0


def service_spec(adapter: Adapter) -> ServiceSpec | None:
    """How to start one node of the variant, or None when it is already running."""
    service = adapter.service
    if service is None:
        return None
    # {python}: the interpreter authbench runs on, so a command can use its environment.
    command = tuple(part.replace("{python}", sys.executable) for part in service.command)
    return ServiceSpec(command=command, cwd=Path(service.cwd),
                       env={**service.env, **adapter.variant.env}, ready_path=service.ready,
                       url=service.url, stop_signal=service.stop_signal,
                       ready_timeout=service.ready_timeout)


class ApiRig(Rig):
    """A variant's nodes and Locust, up from `up()` to `down()` (the Rig's windows)."""

    def __init__(self, cell: Cell, adapter: Adapter, folder: Path, placement: Placement,
                 run_time: float, external_workers: int = 0,
                 master_bind_host: str = "127.0.0.1", master_bind_port: int = 5557) -> None:
        # Nothing of the twins' set-up applies (keys, store namespace, faults, delay line).
        self.cell = cell
        self.adapter = adapter
        self.folder = folder
        self.placement = placement
        self.run_time = run_time
        self.external_workers = external_workers
        self.master_bind = (master_bind_host, master_bind_port)
        self.store_url, self.namespace = "", ""
        self.env: dict[str, str] = {}
        self.direct_env: dict[str, str] = {}
        self.is_shared = False
        self.faults = None
        self.delay = None
        self.locust: LocustProcesses | None = None
        spec = service_spec(adapter)
        self.service = None if spec is None else ServiceGroup(spec, cell.nodes, folder)
        self.facts: dict[str, Any] = {
            "target": "external", "placement": placement.describe(),
            "api": {"name": adapter.name, "variant": adapter.variant.name,
                    "kind": adapter.variant.kind, "store": adapter.variant.store,
                    "env": dict(adapter.variant.env),
                    "cpu_claimed": spec is not None or bool(adapter.pids)}}
        self.failure: str | None = None
        self._is_up = False

    @property
    def node_urls(self) -> list[str]:
        return self.service.node_urls if self.service is not None else list(self.adapter.urls)

    def up(self, note: Callable[[str], None] = lambda text: None) -> None:
        """Start (or find) the nodes, verify each, log every user in; a failure is kept
        in `failure`, never raised."""
        try:
            self._is_up = True
            if self.service is not None:
                self.service.start()
                self.facts["topology"] = self.service.describe()
            else:
                self.facts["topology"] = {"kind": "external", "nodes": len(self.node_urls),
                                          "node_urls": self.node_urls,
                                          "node_pids": list(self.adapter.pids),
                                          "node_places": node_places(self.adapter)}
            checks = [verify_api(self.adapter, url) for url in self.node_urls]
            self.facts["verify"] = [c.as_dict() for c in checks]
            failed = [c for c in checks if not c.is_passed]
            if failed:
                raise CellFailed(f"verification failed on {failed[0].url}: {failed[0].reason}")
            adapter_file = self.folder / "api.json"
            adapter_file.write_text(self.adapter.model_dump_json(by_alias=True, indent=1))
            urls = self.node_urls
            self.locust = LocustProcesses(
                self.cell, urls[0], self.folder, self.run_time,
                nodes=urls if len(urls) > 1 else None, node_urls=urls,
                external_workers=self.external_workers, master_bind_host=self.master_bind[0],
                master_bind_port=self.master_bind[1], on_spawn=self.placement.pin_generator,
                extra_env={"AUTHBENCH_API": str(adapter_file),
                           # A watch must end inside the probe's window, rejected or not.
                           "AUTHBENCH_PROBE_MAX_S": f"{PROBE_MAX_SECONDS:g}"})
            self.locust.start()
            self.facts["locust"] = {"command": self.locust.command}
            started = time.monotonic()
            self.locust.wait_ready(ready_timeout(self.cell), self._dead_targets)
            note(f"{self.cell.key}: verified, {self.cell.users} users logged in "
                 f"({time.monotonic() - started:.1f} s)")
        except (CellFailed, LocustFailed, ServiceFailed) as exc:
            self.failure = str(exc)
        except Exception as exc:  # an API that answers nonsense must not end the run
            self.failure = f"{type(exc).__name__}: {exc}"

    def settle(self) -> None:
        """Pin the service's processes to the targets' CPUs (when it runs here)."""
        if self.failure is not None:
            return
        for pid in self._target_pids():
            try:
                self.placement.pin_target(pid)
            except (OSError, psutil.Error):
                continue  # a process of someone else's we may not move

    def _target_pids(self) -> list[int]:
        return self._cpu_pids()

    def _cpu_pids(self) -> list[int]:
        if self.service is not None:
            return self.service.pids()
        return [pid for pid in self.adapter.pids if psutil.pid_exists(pid)]

    def _counters(self) -> dict[str, Any]:
        return {}  # the API's store is not authbench's to read

    def _dead_targets(self) -> str | None:
        if self.service is not None:
            dead = self.service.dead_nodes()
        else:
            dead = [f"process {pid} is gone" for pid in self.adapter.pids
                    if not psutil.pid_exists(pid)]
        return "target died during the cell: " + " | ".join(dead) if dead else None

    def down(self) -> dict[str, Any]:
        """Stop Locust and the nodes authbench started (never a service it found running)."""
        outcome: dict[str, Any] = {}
        if self.locust is not None:
            result = self.locust.stop()
            outcome = {"exit_code": result.exit_code, "cpu_warnings": result.cpu_warnings,
                       "command": result.command}
            self.locust = None
        if self.service is not None:
            self.service.stop()
        self._is_up = False
        return {"locust": outcome, "warnings": []}
