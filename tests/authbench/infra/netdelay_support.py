"""Helpers for the delay line's tests: a relay in a thread, kernel-stamped one-way delays,
PINGs to a Redis, and redis-benchmark's p50."""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from authbench.infra.netdelay import Relay, RelayStats
from authbench.infra.ports import LOOPBACK

# linux/asm-generic/socket.h: the receive time of each read, in wall-clock nanoseconds.
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
TIMESPEC = struct.Struct("qq")


@dataclass
class RunningRelay:
    """A Relay whose run() goes on in a thread; stats once it has stopped."""

    relay: Relay
    stats: list[RelayStats] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.relay.port


@contextlib.contextmanager
def running_relay(upstream_port: int, rtt_ms: float,
                  jitter_ms: float = 0.0) -> Iterator[RunningRelay]:
    """A delay line in this process (the C loop holds no GIL) until the block ends."""
    relay = Relay(f"{LOOPBACK}:0", f"{LOOPBACK}:{upstream_port}", rtt_ms, jitter_ms)
    running = RunningRelay(relay)
    thread = threading.Thread(target=lambda: running.stats.append(relay.run()), daemon=True)
    thread.start()
    try:
        yield running
    finally:
        relay.stop()
        thread.join(10)
        relay.close()
    assert not thread.is_alive(), "the relay did not stop"


@contextlib.contextmanager
def connected_pair(upstream: socket.socket, port: int) -> Iterator[tuple[socket.socket,
                                                                          socket.socket]]:
    """A client connected to port, and the upstream's end of it (with receive stamps)."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server, _ = upstream.accept()
        with server:
            server.settimeout(10)
            server.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            yield client, server


def one_way_ms(client: socket.socket, server: socket.socket, count: int,
               gap_s: float = 0.0005) -> list[float]:
    """Send one byte at a time; each one's delay from send() to its receive stamp at server.

    The kernel turns receive stamps on for the whole machine lazily (a deferred static key
    once the first socket asks, off again when the last one closes), so the first bytes
    after the relay's sockets closed may come unstamped: those are left out, a few at most.
    """
    delays = []
    unstamped = 0
    for _ in range(count):
        sent = time.clock_gettime_ns(time.CLOCK_REALTIME)
        client.sendall(b"x")
        data, ancillary, _flags, _address = server.recvmsg(16, socket.CMSG_SPACE(16))
        assert data == b"x"
        stamps = [TIMESPEC.unpack(payload) for level, kind, payload in ancillary
                  if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS]
        if not stamps:
            unstamped += 1
            continue
        seconds, nanoseconds = stamps[0]
        delays.append((seconds * 10**9 + nanoseconds - sent) / 1e6)
        time.sleep(gap_s)
    assert unstamped <= max(5, count // 20), f"{unstamped} of {count} bytes came unstamped"
    return delays


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """size bytes from sock, or AssertionError at an early EOF."""
    parts, left = [], size
    while left:
        part = sock.recv(min(left, 1 << 20))
        assert part, f"EOF with {left} of {size} bytes still to come"
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def seconds_to_close(sock: socket.socket) -> float:
    """How long until sock reads EOF or a reset; AssertionError if it reads data instead."""
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""
    return time.monotonic() - started


def ping_ms(port: int, count: int) -> list[float]:
    """Round trips of sequential Redis PINGs on one connection, in milliseconds."""
    times = []
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter_ns()
            sock.sendall(b"PING\r\n")
            assert recv_exactly(sock, 7) == b"+PONG\r\n"
            times.append((time.perf_counter_ns() - started) / 1e6)
    return times


def added_ping_p50_ms(direct_port: int, proxied_port: int, rounds: int = 4,
                      count: int = 150) -> float:
    """p50 through the proxy minus p50 direct, both in alternating blocks (drift cancels)."""
    direct: list[float] = []
    proxied: list[float] = []
    for _ in range(rounds):
        direct += ping_ms(direct_port, count)
        proxied += ping_ms(proxied_port, count)
    return statistics.median(proxied) - statistics.median(direct)


def redis_benchmark_p50_ms(port: int, clients: int, requests: int) -> float:
    """redis-benchmark's p50 for GET at `clients` connections."""
    binary = shutil.which("redis-benchmark")
    assert binary is not None
    done = subprocess.run(
        [binary, "-h", LOOPBACK, "-p", str(port), "-t", "get", "-n", str(requests),
         "-c", str(clients), "--csv", "--precision", "3"],
        capture_output=True, text=True, timeout=120, check=True)
    header, row = (line.replace('"', "").split(",") for line in done.stdout.splitlines()[-2:])
    return float(row[header.index("p50_latency_ms")])
