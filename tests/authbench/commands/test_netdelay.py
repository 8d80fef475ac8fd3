"""`authbench netdelay` on the command line: one line and exit 2 for what cannot work, the
port on stdout, and a clean stop on a signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence

import pytest

from authbench.cli import main
from authbench.commands import netdelay
from authbench.infra.ports import LOOPBACK, free_port


def _netdelay(*args: str) -> list[str]:
    return ["netdelay", *args]


def _cli(args: Sequence[str]) -> int:
    return main(_netdelay(*args))


ENTRY_POINTS: dict[str, Callable[[Sequence[str]], int]] = {
    "authbench netdelay": _cli,
    "python -m authbench.commands.netdelay": netdelay.main}


@pytest.mark.parametrize(("args", "says"), [
    (("--listen", "127.0.0.1:0", "--to", "127.0.0.1:6379", "--rtt-ms", "-1"),
     "--rtt-ms -1: expected zero or more milliseconds"),
    (("--listen", "127.0.0.1:0", "--to", "127.0.0.1:6379", "--rtt-ms", "1ms"),
     "--rtt-ms '1ms': expected a number of milliseconds"),
    (("--listen", "127.0.0.1:0", "--to", "127.0.0.1:6379", "--rtt-ms", "1", "--jitter-ms",
      "-0.5"), "--jitter-ms -0.5"),
    (("--listen", "127.0.0.1", "--to", "127.0.0.1:6379", "--rtt-ms", "1"),
     "--listen '127.0.0.1': expected HOST:PORT"),
    (("--listen", "127.0.0.1:0", "--to", "::1:6379", "--rtt-ms", "1"), "in brackets"),
    (("--listen", "127.0.0.1:0", "--to", "no-such-host.invalid:6379", "--rtt-ms", "1"),
     "cannot resolve 'no-such-host.invalid'"),
])
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_what_cannot_work_is_one_line_and_exit_2(args: tuple[str, ...], says: str, entry: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert ENTRY_POINTS[entry](args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("authbench netdelay: ") and says in captured.err
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_a_busy_listen_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server((LOOPBACK, 0)) as busy:
        port = busy.getsockname()[1]
        assert main(_netdelay("--listen", f"{LOOPBACK}:{port}", "--to", f"{LOOPBACK}:6379",
                              "--rtt-ms", "1")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port} on {LOOPBACK} is in use" in err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_it_prints_its_port_and_stops_cleanly_on_a_signal(signum: int) -> None:
    with socket.create_server((LOOPBACK, 0)) as upstream:
        process = subprocess.Popen(
            [sys.executable, "-m", "authbench", "netdelay", "--listen", f"{LOOPBACK}:0",
             "--to", f"{LOOPBACK}:{upstream.getsockname()[1]}", "--rtt-ms", "0.5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith(f"listening on {LOOPBACK}:")
            port = int(line.rsplit(":", 1)[1])
            assert port != 0
            with socket.create_connection((LOOPBACK, port), timeout=5) as client:
                server, _ = upstream.accept()
                with server:
                    client.sendall(b"hello")
                    assert server.recv(5) == b"hello"
                    process.send_signal(signum)
                    assert process.wait(10) == 0
                    assert client.recv(1) == b""  # its connections are closed, not left open
        finally:
            process.kill()
            _out, err = process.communicate(timeout=10)
    assert "1 connections" in err and "5 bytes" in err


def test_the_listen_port_is_free_again_after_a_stop() -> None:
    port = free_port()
    for _ in range(2):
        process = subprocess.Popen(
            [sys.executable, "-m", "authbench", "netdelay", "--listen", f"{LOOPBACK}:{port}",
             "--to", f"{LOOPBACK}:6379", "--rtt-ms", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout is not None
        assert process.stdout.readline() == f"listening on {LOOPBACK}:{port}\n"
        process.terminate()
        assert process.wait(10) == 0
        process.stdout.close()
