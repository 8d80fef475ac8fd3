"""A redis-server of the test's own, on a free loopback port: restart, flush, fill at will.

The shared Redis on 6379 is never restarted, flushed or reconfigured; tests that need
that start one of these.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from authbench.infra.ports import LOOPBACK, free_port

READY_WITHIN = 10.0  # seconds for redis-server to answer PING


class PrivateRedis:
    """One redis-server process (restartable on the same port), its data in `folder`."""

    def __init__(self, binary: str, folder: Path, *args: str) -> None:
        self.binary = binary
        self.folder = folder
        self.args = args
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis:
        """A plain redis-py client for the test's own commands."""
        return redis.Redis(host=LOOPBACK, port=self.port, db=db, socket_timeout=5.0)

    def start(self) -> None:
        # No persistence unless a test SAVEs: a restart then comes back empty.
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((LOOPBACK, self.port), 0.2):
                    pass
                with self.client() as client:
                    if client.ping():
                        return
            except (OSError, redis.RedisError):
                time.sleep(0.02)
        raise AssertionError(f"private redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        """Stop and start on the same port: empty, unless a SAVE left a dump behind."""
        self.stop()
        self.start()


StartRedis = Callable[..., PrivateRedis]  # the start_redis fixture (conftest.py)
