"""The delay line: its timing, its bytes, its closes, and the process wrapper, on real sockets."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest

from authbench.infra.netdelay import (
    DelayLine,
    DelayLineFailed,
    NetdelayError,
    Relay,
    load_relay,
    split_host_port,
    with_host_port,
)
from authbench.infra.ports import LOOPBACK, free_port
from tests.authbench.infra.netdelay_support import (
    added_ping_p50_ms,
    connected_pair,
    one_way_ms,
    ping_ms,
    recv_exactly,
    redis_benchmark_p50_ms,
    running_relay,
    seconds_to_close,
)
from tests.conftest import IS_CI
from tests.targets.redis_server import StartRedis


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:6379", ("127.0.0.1", 6379)),
    ("localhost:0", ("localhost", 0)),
    ("[::1]:6379", ("::1", 6379)),
    ("db.example:65535", ("db.example", 65535)),
])
def test_split_host_port(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("6379", "expected HOST:PORT"),
    (":6379", "expected HOST:PORT"),
    ("::1:6379", "in brackets"),
    ("[127.0.0.1]:6379", "IPv6 addresses only"),
    ("[]:6379", "expected HOST:PORT"),
    ("host:", "the port must be a number"),
    ("host:x", "the port must be a number"),
    ("host:65536", "the port must be a number"),
    ("host:-1", "the port must be a number"),
])
def test_split_host_port_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        split_host_port(text)


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:7000/0"),
    ("rediss://:secret@cache.internal:6380/2?ssl_cert_reqs=none",
     "rediss://:secret@127.0.0.1:7000/2?ssl_cert_reqs=none"),
    ("postgresql://postgres:pw@127.0.0.1:5432/test?sslmode=disable",
     "postgresql://postgres:pw@127.0.0.1:7000/test?sslmode=disable"),
    ("postgresql://user@[::1]/db", "postgresql://user@127.0.0.1:7000/db"),
])
def test_with_host_port_keeps_everything_but_the_address(url: str, expected: str) -> None:
    assert with_host_port(url, "127.0.0.1", 7000) == expected


@pytest.mark.parametrize("url", ["127.0.0.1:6379", "postgresql://a:5432,b:5432/db"])
def test_with_host_port_refuses_what_it_cannot_point(url: str) -> None:
    with pytest.raises(ValueError, match=url):
        with_host_port(url, "127.0.0.1", 7000)


@pytest.mark.parametrize(("listen", "to", "rtt", "says"), [
    ("127.0.0.1:0", "127.0.0.1:6379", "-1", "--rtt-ms -1"),
    ("127.0.0.1:0", "127.0.0.1:6379", "inf", "--rtt-ms inf"),
    ("127.0.0.1:x", "127.0.0.1:6379", "1", "--listen"),
    ("127.0.0.1:0", "no-such-host.invalid:6379", "1", "cannot resolve"),
    ("192.0.2.1:0", "127.0.0.1:6379", "1", "cannot listen there"),
])
def test_relay_refuses_bad_settings(listen: str, to: str, rtt: str, says: str) -> None:
    with pytest.raises(NetdelayError, match=says):
        Relay(listen, to, rtt)


def test_a_missing_relay_module_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(NetdelayError, match=r"not built .*pip install -e \."):
        load_relay()


def test_each_chunk_arrives_half_the_rtt_after_it_was_sent() -> None:
    # Measured where it matters: the kernel's receive stamp at the upstream's socket.
    with socket.create_server((LOOPBACK, 0)) as upstream:
        with running_relay(upstream.getsockname()[1], rtt_ms=0.5) as running, \
                connected_pair(upstream, running.port) as (client, server):
            delays = one_way_ms(client, server, 300)
        with connected_pair(upstream, upstream.getsockname()[1]) as (client, server):
            direct = one_way_ms(client, server, 100)
    added = statistics.median(delays) - statistics.median(direct)
    # 250 us asked; a relay that let the kernel's wake-up (tens of us on a VM) pile on top,
    # or one with millisecond timers, is outside.
    assert 0.235 <= added <= 0.285, f"median one-way added {added * 1000:.1f} us, wanted 250"
    assert min(delays) >= 0.2  # no chunk leaves much before its time
    stats = running.stats[0]
    assert (stats.connections, stats.refused, stats.chunks, stats.bytes) == (1, 0, 300, 300)


def test_a_busy_connection_is_not_serialized() -> None:
    # 40 chunks, 2 ms apart, on one connection through a 40 ms (20 ms each way) line: each
    # arrives 20 ms after its own send. A proxy that sleeps per chunk after dequeuing it
    # would deliver the last one 40 x 20 ms = 800 ms late.
    with socket.create_server((LOOPBACK, 0)) as upstream, \
            running_relay(upstream.getsockname()[1], rtt_ms=40) as running, \
            connected_pair(upstream, running.port) as (client, server):
        arrived_at: list[float] = []

        def receive() -> None:
            for index in range(40):
                assert recv_exactly(server, 100) == bytes([index]) * 100
                arrived_at.append(time.monotonic())

        receiver = threading.Thread(target=receive)
        receiver.start()
        sent_at = []
        for index in range(40):
            sent_at.append(time.monotonic())
            client.sendall(bytes([index]) * 100)
            time.sleep(0.002)
        receiver.join(10)
    delays_ms = [(arrived - sent) * 1000 for sent, arrived in zip(sent_at, arrived_at,
                                                                  strict=True)]
    assert min(delays_ms) >= 19.5
    assert max(delays_ms) <= 35, delays_ms


def test_a_big_payload_arrives_whole_and_in_order_even_with_jitter() -> None:
    payload = os.urandom(4 << 20)
    with socket.create_server((LOOPBACK, 0)) as upstream, \
            running_relay(upstream.getsockname()[1], rtt_ms=2, jitter_ms=2) as running, \
            connected_pair(upstream, running.port) as (client, server):

        def send_in_uneven_pieces() -> None:
            offset, size = 0, 1
            while offset < len(payload):
                client.sendall(payload[offset:offset + size])
                offset += size
                size = size * 7 % 65_521 + 1  # 1 byte up to 64 KiB, no two alike in a row

        sender = threading.Thread(target=send_in_uneven_pieces)
        sender.start()
        received = recv_exactly(server, len(payload))
        sender.join(10)
        assert received == payload
        # And back the other way, as one write.
        server.sendall(payload)
        assert recv_exactly(client, len(payload)) == payload


def test_jitter_spreads_the_delay_within_half_of_it_each_way() -> None:
    with socket.create_server((LOOPBACK, 0)) as upstream, \
            running_relay(upstream.getsockname()[1], rtt_ms=20, jitter_ms=10) as running, \
            connected_pair(upstream, running.port) as (client, server):
        delays = one_way_ms(client, server, 60, gap_s=0.02)  # apart: no order holds one back
    assert min(delays) >= 4.9 and max(delays) <= 16
    assert statistics.pstdev(delays) >= 1.5  # uniform over 10 ms: about 2.9 ms


def test_a_half_close_is_passed_on_in_order_both_ways() -> None:
    with socket.create_server((LOOPBACK, 0)) as upstream, \
            running_relay(upstream.getsockname()[1], rtt_ms=20) as running, \
            connected_pair(upstream, running.port) as (client, server):
        client.sendall(b"last words")
        client.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        assert recv_exactly(server, 10) == b"last words"
        assert server.recv(1) == b""  # the EOF, behind the data
        server.sendall(b"reply after EOF")  # the other way is still open
        assert recv_exactly(client, 15) == b"reply after EOF"
        server.close()
        assert client.recv(1) == b""
        assert time.monotonic() - started < 1.0
    assert running.stats[0].connections == 1


def test_a_refusing_upstream_closes_the_client_at_once() -> None:
    with running_relay(free_port(), rtt_ms=1) as running, \
            socket.create_connection((LOOPBACK, running.port), timeout=5) as client:
        assert seconds_to_close(client) < 1.0
    assert running.stats[0].refused == 1


def test_an_upstream_that_dies_mid_connection_closes_the_client(
        start_redis: StartRedis) -> None:
    redis = start_redis()
    with running_relay(redis.port, rtt_ms=1) as running, \
            socket.create_connection((LOOPBACK, running.port), timeout=5) as client:
        client.sendall(b"PING\r\n")
        assert recv_exactly(client, 7) == b"+PONG\r\n"
        assert redis.process is not None
        redis.process.kill()
        redis.process.wait(10)
        assert seconds_to_close(client) < 1.0


def test_a_stopped_relay_closes_its_connections() -> None:
    with socket.create_server((LOOPBACK, 0)) as upstream, \
            running_relay(upstream.getsockname()[1], rtt_ms=1) as running, \
            connected_pair(upstream, running.port) as (client, server):
        running.relay.stop()
        assert seconds_to_close(client) < 1.0
        assert seconds_to_close(server) < 1.0


def test_delay_line_process_starts_relays_and_stops(tmp_path: Path,
                                                    start_redis: StartRedis) -> None:
    redis = start_redis()
    line = DelayLine(LOOPBACK, redis.port, rtt_ms=2, log_path=tmp_path / "netdelay.log")
    with pytest.raises(DelayLineFailed, match="not started"):
        line.proxied_url(redis.url)
    with line:
        assert line.pid > 0 and line.port not in (0, redis.port) and line.host == LOOPBACK
        assert line.proxied_url(redis.url) == f"redis://{LOOPBACK}:{line.port}/0"
        assert 2.0 <= statistics.median(ping_ms(line.port, 20)) < 3.5
    assert line.returncode == 0  # SIGTERM is a clean stop
    line.stop()  # again: nothing happens
    assert "1 connections" in (tmp_path / "netdelay.log").read_text()


def test_delay_line_that_cannot_start_says_why(tmp_path: Path) -> None:
    line = DelayLine(LOOPBACK, 6379, rtt_ms=-1, log_path=tmp_path / "netdelay.log")
    with pytest.raises(DelayLineFailed, match=r"exit code 2(.|\n)*--rtt-ms -1.0"):
        line.start()
    assert line.returncode == 2


def _needs_redis_benchmark() -> None:
    if shutil.which("redis-benchmark") is None:
        if IS_CI:
            pytest.fail("CI needs redis-benchmark (it comes with redis-server)")
        pytest.skip("redis-benchmark is not installed")


# The relay's own forwarding (two extra hops, two extra wake-ups per round trip), at most.
OWN_MS = 0.2


@pytest.mark.slow
def test_a_zero_delay_line_adds_only_its_own_forwarding(start_redis: StartRedis) -> None:
    redis = start_redis()
    with DelayLine(LOOPBACK, redis.port, 0.0) as line:
        own = added_ping_p50_ms(redis.port, line.port)
    assert -0.02 <= own <= OWN_MS, f"added p50 {own:.3f} ms at rtt 0"


@pytest.mark.slow
@pytest.mark.parametrize(("rtt_ms", "low", "high"), [(0.25, 0.17, 0.35), (1.0, 0.88, 1.12)])
def test_added_p50_of_sequential_pings(rtt_ms: float, low: float, high: float,
                                       start_redis: StartRedis) -> None:
    # The timed part is read against a zero-delay line in the same alternation, so the
    # relay's own forwarding (tens of us, more on a slower machine: 0.13 ms once in CI)
    # is apart from the delay it times: 0.25 ms -32/+40 %, 1 ms +-12 % (the acceptance is
    # +-25 % and +-10 % with redis-benchmark; more room here because where the scheduler
    # puts four processes on two cores moves a round trip by tens of us). A proxy that
    # sleeps in whole milliseconds, or adds its delay twice, falls outside; so does one
    # whose forwarding adds more than OWN_MS on top of the delay.
    redis = start_redis()
    with (DelayLine(LOOPBACK, redis.port, 0.0) as zero,
          DelayLine(LOOPBACK, redis.port, rtt_ms) as line):
        timed = added_ping_p50_ms(zero.port, line.port)
        total = added_ping_p50_ms(redis.port, line.port)
    assert low <= timed <= high, f"timed p50 {timed:.3f} ms at rtt {rtt_ms} ms"
    assert total <= high + OWN_MS, f"added p50 {total:.3f} ms at rtt {rtt_ms} ms"


@pytest.mark.slow
@pytest.mark.parametrize(("rtt_ms", "low", "high"), [(0.25, 0.17, 0.35), (1.0, 0.88, 1.12)])
def test_added_p50_at_8_connections(rtt_ms: float, low: float, high: float,
                                    start_redis: StartRedis) -> None:
    _needs_redis_benchmark()
    redis = start_redis()
    with DelayLine(LOOPBACK, redis.port, rtt_ms) as line:
        direct, proxied = [], []
        for _ in range(2):
            direct.append(redis_benchmark_p50_ms(redis.port, 8, 4000))
            proxied.append(redis_benchmark_p50_ms(line.port, 8, 4000))
    added = statistics.median(proxied) - statistics.median(direct)
    assert low <= added <= high, f"added p50 {added:.3f} ms at rtt {rtt_ms} ms, 8 connections"
