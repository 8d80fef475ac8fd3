"""`authbench worker --master HOST:PORT`: a Locust worker for an authbench master, on any host.

Also `python -m authbench.commands.worker`, the same command without the rest of the CLI
(the runner starts its own workers so: the whole CLI costs about 1 s of CPU to import).

It first says hello to the master (loadtests.wire, over plain ZeroMQ: nothing here
imports Locust or gevent), and the master answers with its authbench version, the name
of its scenario file and the scenario's settings (its AUTHBENCH_* environment, and an
API's adapter when it drives one). A master of another version is one line and exit 1.
Then this process becomes the Locust worker (exec: the same pid, so a runner that
started it samples its CPU) and runs the scenario file of the same name from this host's
own authbench (the versions match, so the files do) with the master's settings. Its
windows' histograms and CPU go back to the master over Locust's messages
(loadtests.gather): it writes no histogram file (the faults scenario's per-second
timelines are still written where each worker runs).

One worker serves one master: it ends when its master quits. A runner with
--external-workers starts a master per configuration, so on a worker host run it in a
loop: `while authbench worker --master HOST:5557; do :; done`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgpack  # type: ignore[import-untyped]  # Locust's dependency, untyped
import zmq

from authbench.infra.netdelay.address import join_host_port, split_host_port
from loadtests import wire

LOADTESTS = Path(wire.__file__).resolve().parent
WAIT_SECONDS = 600.0  # how long to wait for a master to answer (the runner may be busy)
RETRY_SECONDS = 1.0
DESCRIPTION = ("It takes the master's scenario and settings (refusing a master of another "
               "authbench version) and sends each window's histograms and CPU back to it (it "
               "writes none itself). It serves one master and ends with it: for a run of several "
               "configurations, loop it (while authbench worker --master H:5557; do :; done).")


class WorkerError(Exception):
    """What stops the worker, as one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def parse_master(text: str) -> tuple[str, int]:
    """--master as (host, port); WorkerError (exit 2) naming what is wrong."""
    try:
        host, port = split_host_port(text)
    except ValueError as exc:
        raise WorkerError(f"--master {exc}", 2) from None
    if port == 0:
        raise WorkerError(f"--master {text!r}: the master's port cannot be 0", 2)
    try:
        socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise WorkerError(f"--master {text!r}: cannot resolve {host!r} ({exc})", 2) from None
    return host, port


def handshake(host: str, port: int, wait: float) -> dict[str, Any]:
    """Say hello until the master answers; its welcome (version, scenario, env)."""
    identity = f"{socket.gethostname()}_authbench_hello_{uuid4().hex}"
    hello = msgpack.dumps((wire.HELLO_MESSAGE, {
        "is_handshake": True, "version": wire.authbench_version(),
        "host": socket.gethostname(), "pid": os.getpid()}, identity))
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity.encode())
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IMMEDIATE, 1)  # queue a hello only on a connection that is up
    sock.setsockopt(zmq.IPV6, 1)
    sock.connect(f"tcp://{join_host_port(host, port)}")
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(zmq.Again):  # not connected yet: the next round
                sock.send(hello, zmq.NOBLOCK)
            if sock.poll(round(RETRY_SECONDS * 1000)):
                kind, data, _ = msgpack.loads(sock.recv(), raw=False, strict_map_key=False)
                if kind == wire.WELCOME_MESSAGE:
                    welcome: dict[str, Any] = data
                    return welcome
    finally:
        sock.close()
        context.term()
    raise WorkerError(f"no authbench master answered at {join_host_port(host, port)} "
                      f"within {wait:g} s")


def _adapter_file(text: str) -> str:
    """The master's adapter (JSON) in a file of this host; one per content, reused."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"authbench-api-{digest}.json"
    if not path.is_file() or path.read_text() != text:
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        partial.write_text(text)
        partial.replace(path)
    return str(path)


def worker_command(host: str, port: int, welcome: dict[str, Any],
                   environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The Locust worker's command line and environment, from the master's welcome."""
    mine = wire.authbench_version()
    if welcome.get("version") != mine:
        raise WorkerError(wire.mismatch(str(welcome.get("version")), mine))
    scenario = LOADTESTS / str(welcome.get("scenario", ""))
    if not welcome.get("scenario") or not scenario.is_file():
        raise WorkerError(f"the master runs scenario {welcome.get('scenario')!r}, which is not "
                          f"in this worker's {LOADTESTS}")
    env = {**environ, **welcome.get("env", {}), "AUTHBENCH_CONTROL": wire.REMOTE_CONTROL}
    if welcome.get("api"):
        env["AUTHBENCH_API"] = _adapter_file(str(welcome["api"]))
    # Failed requests are measured, not the worker's failure (as for the runner's master): a
    # worker looped over a run's configurations must not stop at one that had some. (A worker
    # hands its errors to the master with its stats, so it rarely holds any when it quits.)
    command = [sys.executable, "-m", "locust", "-f", str(scenario), "--worker",
               "--master-host", host, "--master-port", str(port), "--exit-code-on-error", "0"]
    return command, env


def cmd_worker(args: argparse.Namespace) -> int:
    """A Locust worker for an authbench master (`authbench run --external-workers`)."""
    try:
        host, port = parse_master(args.master)
        welcome = handshake(host, port, args.wait)
        command, env = worker_command(host, port, welcome, dict(os.environ))
    except WorkerError as exc:
        print(f"authbench worker: {exc}", file=sys.stderr)
        return exc.code
    print(f"authbench worker: joining the master at {join_host_port(host, port)} "
          f"({welcome['scenario']}, authbench {welcome['version']})", file=sys.stderr,
          flush=True)
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # noqa: S606 (no shell: argv as given)
    return 0  # not reached: exec replaced this process


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments, on the CLI's subparser or this module's own parser."""
    parser.add_argument("--master", required=True, metavar="HOST:PORT",
                        help="the runner's Locust master (authbench run --external-workers N "
                             "--master-bind-host 0.0.0.0; port 5557 unless "
                             "--master-bind-port)")
    parser.add_argument("--wait", type=float, default=WAIT_SECONDS, metavar="SECONDS",
                        help=f"how long to wait for the master to answer ({WAIT_SECONDS:g})")
    parser.set_defaults(handler=cmd_worker)


def add_parsers(sub: Any) -> None:
    """Register worker."""
    configure(sub.add_parser("worker", help=cmd_worker.__doc__,
                             description=f"{cmd_worker.__doc__} {DESCRIPTION}"))


def main(argv: Sequence[str] | None = None) -> int:
    """`authbench worker` alone."""
    parser = argparse.ArgumentParser(prog="authbench worker",
                                     description=f"{cmd_worker.__doc__} {DESCRIPTION}")
    configure(parser)
    try:
        return cmd_worker(parser.parse_args(argv))
    except KeyboardInterrupt:
        print("authbench worker: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
