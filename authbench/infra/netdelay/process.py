"""A delay line in its own process, for the suite runner: start, point URLs at it, stop."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from authbench.infra.children import die_with_parent_env
from authbench.infra.launcher import stop_process, tail
from authbench.infra.netdelay.address import join_host_port, split_host_port, with_host_port
from authbench.infra.ports import LOOPBACK

READY_LINE = "listening on "
STOP_SECONDS = 5.0


class DelayLineFailed(RuntimeError):
    """A delay line did not come up; the message carries its log's last lines."""


def _read_line(stream: int, deadline: float) -> str:
    """The first line the process writes to stream, or what it wrote before EOF or time."""
    seen = b""
    while b"\n" not in seen and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([stream], [], [], left)
        if not readable:
            break
        more = os.read(stream, 4096)
        if not more:
            break
        seen += more
    return seen.decode(errors="replace").partition("\n")[0]


class DelayLine:
    """`authbench netdelay` on a loopback port in front of one upstream (Redis, PostgreSQL)."""

    def __init__(self, upstream_host: str, upstream_port: int, rtt_ms: float,
                 jitter_ms: float = 0.0, log_path: Path | None = None) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.rtt_ms = rtt_ms
        self.jitter_ms = jitter_ms
        self.log_path = log_path
        self.host = LOOPBACK
        self.port = 0  # known once started
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The delay line's process id (its CPU is the proxy's, apart from the store's)."""
        if self.process is None:
            raise DelayLineFailed("the delay line is not started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """Its exit code once stopped (0 after a clean SIGTERM), else None."""
        return None if self.process is None else self.process.poll()

    def command(self) -> list[str]:
        """The command line that start() runs."""
        # The command alone, not the whole CLI: 0.2 s of CPU to start instead of 1.2 s.
        return [sys.executable, "-m", "authbench.commands.netdelay",
                "--listen", join_host_port(self.host, 0),
                "--to", join_host_port(self.upstream_host, self.upstream_port),
                "--rtt-ms", repr(float(self.rtt_ms)), "--jitter-ms", repr(float(self.jitter_ms))]

    def start(self, timeout: float = 10.0) -> None:
        """Spawn it and learn its port from its first line; DelayLineFailed if it does not."""
        if self.process is not None:
            raise DelayLineFailed("the delay line is already started")
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="authbench-netdelay-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        with self.log_path.open("wb") as log:
            # It stops by itself if this process dies, even by SIGKILL (Linux).
            self.process = subprocess.Popen(
                self.command(), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                env={**os.environ, **die_with_parent_env()})
        assert self.process.stdout is not None
        try:
            line = _read_line(self.process.stdout.fileno(), time.monotonic() + timeout)
        finally:
            self.process.stdout.close()  # it writes nothing more to stdout
        try:
            if not line.startswith(READY_LINE):
                raise ValueError(line or "nothing")
            self.host, self.port = split_host_port(line.removeprefix(READY_LINE))
        except ValueError as exc:
            code = stop_process(self.process, STOP_SECONDS)
            raise DelayLineFailed(f"the delay line to {self.upstream_host}:{self.upstream_port} "
                                  f"did not start (exit code {code}; it said {exc}):\n"
                                  f"{tail(self.log_path)}") from None

    def proxied_url(self, url: str) -> str:
        """The store URL with its host and port replaced by this delay line's."""
        if self.port == 0:
            raise DelayLineFailed("the delay line is not started: its port is not known yet")
        return with_host_port(url, self.host, self.port)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds; a second call does nothing."""
        if self.process is not None:
            stop_process(self.process, STOP_SECONDS)

    def __enter__(self) -> DelayLine:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
