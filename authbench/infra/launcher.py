"""Start target processes, wait until they answer /health, and stop them cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from authbench.infra.children import die_with_parent_env
from authbench.infra.ports import LOOPBACK, free_port

READY_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


class TargetFailed(RuntimeError):
    """A target exited or never became ready; the message carries its last log lines."""


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, or nothing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after timeout; reap it and return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


class TargetProcess:
    """One `authbench serve` process on a loopback port, with its environment."""

    def __init__(
        self,
        env: Mapping[str, str],
        port: int | None = None,
        host: str = LOOPBACK,
        log_path: Path | None = None,
    ) -> None:
        self.env = dict(env)
        self.host = host
        self.port = port or free_port(host)
        if log_path is None:
            log_path = Path(tempfile.mkstemp(prefix="authbench-target-", suffix=".log")[1])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the target."""
        scheme = "https" if self.env.get("TLS_CERT_FILE") else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        """Spawn the process; does not wait (see wait_ready).

        Started from the main thread on Linux, the target stops by itself when this
        process dies, even by SIGKILL: a killed runner leaves no target holding a port.
        """
        env = {**os.environ, **self.env, **die_with_parent_env()}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "authbench", "serve", "--host", self.host,
                 "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def is_alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, object]:
        """Poll /health until 200; raise TargetFailed if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        with httpx.Client(verify=False, timeout=1.0) as client:  # noqa: S501 (self-signed loopback)
            while time.monotonic() < deadline:
                if not self.is_alive():
                    code = self.process.returncode if self.process else "?"
                    raise TargetFailed(
                        f"target on port {self.port} exited with code {code}:\n"
                        f"{tail(self.log_path)}"
                    )
                try:
                    answer = client.get(f"{self.url}/health")
                    if answer.status_code == 200:
                        body: dict[str, object] = answer.json()
                        return body
                    last = f"HTTP {answer.status_code}: {answer.text[:200]}"
                except httpx.TransportError as exc:
                    last = type(exc).__name__
                time.sleep(POLL_INTERVAL)
        self.stop()
        raise TargetFailed(
            f"target on port {self.port} not ready after {timeout:.0f}s ({last}):\n"
            f"{tail(self.log_path)}"
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout; return the exit code."""
        if self.process is None:
            return None
        return stop_process(self.process, timeout)

    def __enter__(self) -> TargetProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
