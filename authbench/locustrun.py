"""Run Locust for one cell: one local process, or a master and W workers, as processes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from authbench.ports import LOOPBACK, free_port
from authbench.suite import Cell

LOADTESTS = Path(__file__).resolve().parent.parent / "loadtests"
GRACE_SECONDS = 90


@dataclass(frozen=True)
class LocustOutcome:
    """How Locust ended, and whether it warned that it ran out of CPU."""

    exit_code: int
    cpu_warnings: int
    log_tail: str
    command: list[str]


def locust_command(cell: Cell, host: str, folder: Path) -> list[str]:
    """The master (or single-process) command line."""
    users = str(cell.users)
    rate = str(cell.spawn_rate or cell.users)
    return [
        sys.executable, "-m", "locust", "-f", str(LOADTESTS / f"{cell.scenario}.py"),
        "--headless", "--host", host, "-u", users, "-r", rate,
        "-t", f"{round(cell.warmup + cell.duration)}s",
        "--csv", str(folder / "locust"), "--csv-full-history",
        "--html", str(folder / "locust.html"),
        "--logfile", str(folder / "locust.log"), "--loglevel", "INFO",
        "--stop-timeout", "5", "--exit-code-on-error", "0",
    ]


def run_locust(cell: Cell, host: str, folder: Path, nodes: list[str] | None = None,
               seed_users: int = 1000, external_workers: int = 0,
               master_bind_host: str = LOOPBACK, master_bind_port: int = 5557,
               node_urls: list[str] | None = None) -> LocustOutcome:
    """Run the cell's scenario; W local workers plus any external ones that connect.

    nodes: spread users over these URLs from the client side (no balancer in front).
    node_urls: every node's own URL, for scenarios that address nodes one by one.
    """
    env = {
        **os.environ,
        "AUTHBENCH_HDR_DIR": str(folder),
        "AUTHBENCH_WARMUP": str(cell.warmup),
        "AUTHBENCH_SEED_USERS": str(seed_users),
        "AUTHBENCH_NODES": ",".join(nodes or []),
        "AUTHBENCH_NODE_URLS": ",".join(node_urls or []),
        "AUTHBENCH_LOGOUT": cell.logout,
    }
    command = locust_command(cell, host, folder)
    workers: list[subprocess.Popen[bytes]] = []
    total_workers = cell.workers + external_workers
    if total_workers:
        # Workers started elsewhere need a port they can know; local ones take any free one.
        port = master_bind_port if external_workers else free_port(master_bind_host)
        command += ["--master", "--expect-workers", str(total_workers),
                    "--master-bind-host", master_bind_host, "--master-bind-port", str(port)]
        for index in range(cell.workers):
            log = (folder / f"locust-worker-{index + 1}.log").open("wb")
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", str(LOADTESTS / f"{cell.scenario}.py"),
                 "--worker", "--master-host", LOOPBACK, "--master-port", str(port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            log.close()
    limit = cell.warmup + cell.duration + GRACE_SECONDS
    with (folder / "locust.stdout").open("wb") as out:
        master = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        try:
            code = master.wait(limit)
        except subprocess.TimeoutExpired:
            master.kill()
            code = master.wait(10)
        finally:
            if master.poll() is None:
                master.kill()
                master.wait(10)
            for worker in workers:
                try:
                    worker.wait(15)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(10)
    log_text = ""
    for path in [folder / "locust.log", *sorted(folder.glob("locust-worker-*.log"))]:
        if path.exists():
            log_text += path.read_text(errors="replace")
    stdout = (folder / "locust.stdout").read_text(errors="replace")
    return LocustOutcome(
        exit_code=code,
        cpu_warnings=log_text.count("CPU usage above") + stdout.count("CPU usage above"),
        log_tail="\n".join((stdout + log_text).splitlines()[-15:]),
        command=command,
    )
