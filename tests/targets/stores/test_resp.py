"""The pipelined Redis client, against real Redis and a peer that answers late."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from authbench.bench.micro import worker
from authbench.infra.ports import free_port
from targets.stores.resp import RedisAddress, RespClient, RespConnectionError, RespError
from tests.support import unique_namespace


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[RespClient]:
    resp = RespClient(redis_url, timeout=1.0, size=2)
    yield resp
    await resp.close()


async def test_round_trip_and_error_reply(client: RespClient) -> None:
    key = unique_namespace()
    assert await client.execute("SET", key, b"v", "PX", 5000) == b"OK"
    assert await client.execute("GET", key) == b"v"
    with pytest.raises(RespError, match="not an integer"):
        await client.execute("INCR", key)
    assert await client.execute("GET", key) == b"v"  # the error left the connection usable
    assert await client.execute("UNLINK", key) == 1
    assert await client.execute("GET", key) is None


async def test_concurrent_commands_get_their_own_replies(client: RespClient) -> None:
    prefix = unique_namespace()
    keys = [f"{prefix}:{i}" for i in range(300)]
    await client.pipeline(*(("SET", k, k, "PX", 5000) for k in keys))
    replies = await asyncio.gather(*(client.execute("GET", k) for k in keys))
    assert replies == [k.encode() for k in keys]
    assert await client.execute("UNLINK", *keys) == 300


async def _late_peer(delay: float) -> tuple[asyncio.Server, int]:
    """A peer whose first connection answers +LATE after delay; later ones +PONG at once."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        is_first = connections == 1
        try:
            while data := await reader.read(65536):
                if is_first:
                    await asyncio.sleep(delay)
                reply = b"+LATE\r\n" if is_first else b"+PONG\r\n"
                writer.write(reply * data.count(b"*"))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_late_reply_never_reaches_the_next_caller() -> None:
    server, port = await _late_peer(delay=0.3)
    resp = RespClient(f"redis://127.0.0.1:{port}/0", timeout=0.1, size=1)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await resp.execute("PING")
        assert time.monotonic() - started < 0.25
        # The timed-out connection was aborted: a new one is used, and its reply is its own.
        resp.timeout = 1.0
        assert await resp.execute("PING") == b"PONG"
    finally:
        await resp.close()
        server.close()


async def test_nothing_listening_is_a_connection_error() -> None:
    resp = RespClient(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, size=1)
    with pytest.raises(RespConnectionError, match=r"Redis at 127\.0\.0\.1"):
        await resp.execute("PING")


def test_address_from_urls() -> None:
    assert RedisAddress.from_url("redis://u:p%40ss@h:7000/3") == RedisAddress(
        "h", 7000, None, "u", "p@ss", 3
    )
    assert RedisAddress.from_url("unix:///run/redis.sock").path == "/run/redis.sock"
    assert RedisAddress.from_url("redis://:pw@h/0").handshake() == [("AUTH", "pw")]
    with pytest.raises(ValueError, match="scheme"):
        RedisAddress.from_url("http://h")


@pytest.fixture
def password_redis() -> Iterator[str]:
    """A second, password-protected redis-server of the test's own (AUTH and SELECT)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with __import__("socket").create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"redis://default:s3cret@127.0.0.1:{port}/2"
    finally:
        process.terminate()
        process.wait(10)


async def test_auth_and_select_on_connect(password_redis: str) -> None:
    resp = RespClient(password_redis, timeout=1.0, size=1)
    try:
        assert await resp.execute("SET", "k", b"v") == b"OK"
        assert await resp.execute("CLIENT", "INFO") is not None
        info = (await resp.execute("CLIENT", "INFO")).decode()
        assert " db=2 " in info
    finally:
        await resp.close()
    wrong = RespClient(password_redis.replace("s3cret", "nope"), timeout=1.0, size=1)
    with pytest.raises(RespError, match="WRONGPASS"):
        await wrong.execute("PING")
    await wrong.close()


@pytest.fixture
def unix_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of the test's own, listening on a unix socket only."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    path = Path(tempfile.mkdtemp(prefix="ab-redis-")) / "redis.sock"  # short: sun_path limit
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(path), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield str(path)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(path.parent, ignore_errors=True)


async def test_unix_socket(unix_redis: str) -> None:
    resp = RespClient(f"unix://{unix_redis}", timeout=1.0, size=1)
    try:
        assert await resp.execute("SET", "k", b"v") == b"OK"
        assert await resp.execute("GET", "k") == b"v"
        assert resp.where == unix_redis
    finally:
        await resp.close()


def test_micro_measures_the_unix_socket(unix_redis: str) -> None:
    found = worker({"groups": ["store"], "algorithms": [], "min_time": 0.001, "samples": 2,
                    "processes": 1, "redis_url": None, "postgres_url": None,
                    "redis_socket": unix_redis})
    assert "redis unix get" in found and "redis unix set+delete" in found


async def test_one_deadline_however_many_callers_queue() -> None:
    """A peer that accepts and never answers: every caller fails within the timeout."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    resp = RespClient(f"redis://:pw@127.0.0.1:{port}/0", timeout=0.2, size=2)  # AUTH hangs

    async def timed() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await resp.execute("PING")
        return time.monotonic() - started

    try:
        waits = await asyncio.gather(*(timed() for _ in range(20)))
        assert max(waits) < 0.45, waits  # one deadline each, not one per queued connect
    finally:
        await resp.close()
        server.close()
