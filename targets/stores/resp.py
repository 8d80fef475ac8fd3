"""A small asyncio Redis client: pipelined connections, hiredis parsing, hard timeouts.

Why not redis-py's asyncio client on the hot path: on this project's 2-core machines
one GET through redis-py 8 (pool, retry and observability layers) cost 60-90 us of
CPU under 32 concurrent requests, against ~15 us here (see BENCHMARKS.md). Requests
share a few connections and their commands are pipelined in flight: replies come
back in order, so each connection is a queue of futures.

Failure rules (docs/security.md, Faults): every command has a deadline; a command that
misses it aborts its connection (its reply could otherwise arrive for the wrong
caller); a connection that died while idle is replaced at its next use, and a
command that meets a dead connection is tried once more on a fresh one.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

from targets.timing import store_call

Reply = Any


class RespError(Exception):
    """Redis answered an error reply (-ERR ...)."""


class RespConnectionError(ConnectionError):
    """The connection to Redis is gone or could not be made."""

    def __init__(self, message: str, was_sent: bool = False) -> None:
        super().__init__(message)
        self.was_sent = was_sent  # the command may have run: retry only if idempotent


def pack(*parts: bytes | str | int | float) -> bytes:
    """One command in the Redis protocol (RESP2 array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, str):
            data = part.encode()
        elif isinstance(part, bytes):
            data = part
        else:
            data = repr(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is and how to log in, from a redis:// or unix:// URL."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    username: str | None = None
    password: str | None = None
    db: int = 0

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "unix"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r} (redis:// or unix://)")
        db = parts.path.strip("/") if parts.scheme == "redis" else ""
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            path=parts.path if parts.scheme == "unix" else None,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            db=int(db) if db else 0,
        )

    @property
    def where(self) -> str:
        """host:port or socket path, for messages (never the password)."""
        return self.path or f"{self.host}:{self.port}"

    def handshake(self) -> list[tuple[Any, ...]]:
        """The AUTH and SELECT commands a new connection sends first."""
        commands: list[tuple[Any, ...]] = []
        if self.password is not None:
            user = (self.username,) if self.username else ()
            commands.append(("AUTH", *user, self.password))
        if self.db:
            commands.append(("SELECT", self.db))
        return commands


class _Connection(asyncio.Protocol):
    """One socket: commands written in order, replies matched to futures in order."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self.waiters: collections.deque[asyncio.Future[Reply]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.is_closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            waiter = self.waiters.popleft()
            if waiter.done():  # its caller timed out; the reply is dropped, order kept
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(RespError(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closed = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RespConnectionError("Redis connection lost", was_sent=True))

    def abort(self) -> None:
        self.is_closed = True
        if self.transport is not None:
            self.transport.abort()


class RespClient:
    """size pipelined connections to one Redis, used round-robin."""

    def __init__(self, url: str, timeout: float, size: int = 4) -> None:
        self.address = RedisAddress.from_url(url)
        self.timeout = timeout
        self._slots: list[_Connection | None] = [None] * size
        self._locks = [asyncio.Lock() for _ in range(size)]
        self._next = 0

    @property
    def where(self) -> str:
        """host:port or socket path, for messages (never the password)."""
        return self.address.where

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        address = self.address
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(self.timeout):
                if address.path is not None:
                    _, conn = await loop.create_unix_connection(_Connection, address.path)
                else:
                    _, conn = await loop.create_connection(
                        _Connection, address.host, address.port
                    )
                if handshake := address.handshake():
                    await self._send(conn, handshake)
        except BaseException as exc:
            if conn is not None:
                conn.abort()  # e.g. a wrong password: no half-set-up socket is left open
            if isinstance(exc, OSError) and not isinstance(exc, RespConnectionError):
                raise RespConnectionError(f"Redis at {self.where}: {exc}") from exc
            raise
        return conn

    async def _connection(self) -> _Connection:
        index = self._next
        self._next = (index + 1) % len(self._slots)
        conn = self._slots[index]
        if conn is not None and not conn.is_closed:
            return conn
        async with self._locks[index]:  # one reconnect per slot, however many callers
            conn = self._slots[index]
            if conn is None or conn.is_closed:
                conn = await self._connect()
                self._slots[index] = conn
            return conn

    @staticmethod
    async def _send(conn: _Connection, commands: list[tuple[Any, ...]]) -> list[Reply]:
        if conn.is_closed or conn.transport is None:
            raise RespConnectionError("Redis connection lost")
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in commands]
        conn.waiters.extend(waiters)
        conn.transport.write(b"".join(pack(*command) for command in commands))
        if len(waiters) == 1:
            return [await waiters[0]]
        return list(await asyncio.gather(*waiters))

    async def pipeline(self, *commands: tuple[Any, ...], is_idempotent: bool = True) -> list[Reply]:
        """Send commands in one write and return their replies, in order.

        One deadline covers everything: waiting for a connection, connecting, the retry
        and the replies, so a caller fails within `timeout` however many are queued.
        """
        conn: _Connection | None = None
        try:
            with store_call():
                async with asyncio.timeout(self.timeout):
                    for attempt in (1, 2):
                        conn = await self._connection()
                        try:
                            return await self._send(conn, list(commands))
                        except RespConnectionError as exc:
                            if attempt == 2 or (exc.was_sent and not is_idempotent):
                                raise
        except TimeoutError:
            if conn is not None:
                conn.abort()  # a late reply must not reach the next caller
            raise
        raise AssertionError("unreachable")

    async def execute(self, *command: Any, is_idempotent: bool = True) -> Reply:
        """One command's reply (RespError for an error reply)."""
        return (await self.pipeline(command, is_idempotent=is_idempotent))[0]

    async def close(self) -> None:
        for index, conn in enumerate(self._slots):
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            self._slots[index] = None
