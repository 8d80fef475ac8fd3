"""The target's server: past MAX_CONCURRENCY it sheds with 503 and says so in its log."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from authbench.infra.serve import CONNECTIONS_PER_REQUEST_SLOT, ShedCount
from targets.settings import ConfigError, Settings
from tests.authbench.bench.test_overload import LOGIN, SLOW_LOGINS
from tests.conftest import StartTarget


def _raw_get(sock: socket.socket, path: str = "/noauth") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                   if line.startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(4096)
    return head.lower()


def test_a_request_past_the_bound_gets_503_with_retry_after_and_keeps_its_connection(
        start_target: StartTarget) -> None:
    target = start_target(**{**SLOW_LOGINS, "MAX_CONCURRENCY": "2"})
    request = (b"POST /auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(LOGIN), LOGIN))
    logins = [socket.create_connection((target.host, target.port), timeout=10)
              for _ in range(2)]
    with socket.create_connection((target.host, target.port), timeout=5) as sock:
        for login in logins:
            login.sendall(request)
        time.sleep(0.05)  # both parsed and in their KDF thread: the two slots are taken
        shed = _raw_get(sock)
        for login in logins:
            assert login.recv(12) == b"HTTP/1.1 200"
            login.close()
        served = _raw_get(sock)  # the same connection, once the slots are free
    assert shed.startswith(b"http/1.1 503")
    assert b"retry-after: 1" in shed
    assert b"connection: close" not in shed
    assert served.startswith(b"http/1.1 200")


def test_past_the_connection_bound_uvicorn_answers_503_with_retry_after_and_closes(
        start_target: StartTarget) -> None:
    target = start_target(AUTH_MODE="none", MAX_CONCURRENCY="2")
    idle = [socket.create_connection((target.host, target.port), timeout=5)
            for _ in range(2 * CONNECTIONS_PER_REQUEST_SLOT)]
    try:
        with socket.create_connection((target.host, target.port), timeout=5) as sock:
            shed = _raw_get(sock)
            assert sock.recv(1) == b""  # closed by the target
    finally:
        for sock in idle:
            sock.close()
    assert shed.startswith(b"http/1.1 503")
    assert b"retry-after: 1" in shed and b"connection: close" in shed
    assert httpx.get(f"{target.url}/noauth", timeout=5).status_code == 200  # back below


def test_max_concurrency_is_a_setting_with_no_bound_at_zero() -> None:
    assert Settings.from_env({}).max_concurrency == 256
    assert Settings.from_env({"MAX_CONCURRENCY": "0"}).max_concurrency == 0
    with pytest.raises(ConfigError, match="MAX_CONCURRENCY"):
        Settings.from_env({"MAX_CONCURRENCY": "1"})
    with pytest.raises(ConfigError, match="MAX_CONCURRENCY"):
        Settings.from_env({"MAX_CONCURRENCY": "-3"})


def test_shed_count_says_so_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 101.0, 102.0, 106.0])
    monkeypatch.setattr("authbench.infra.serve.time.monotonic", lambda: next(clock))
    count = ShedCount(interval=5.0)
    assert count.add("full") == "full: 1 requests shed with 503"
    assert count.add("full") is None
    assert count.add("full") is None
    assert count.add("full") == "full: 3 requests shed with 503 in the last 6 s"
