"""JWT_REVOCATION=pubsub: the blocklist in this node's memory, kept current by Redis pub/sub.

The revocation check on the hot path is a dict lookup, as with a memory store; a
logout on any node reaches every node's copy in about one Redis round trip:

- a revocation is written to Redis like a shared blocklist's (the durable copy)
  and then published on '<namespace>:revocations';
- every node subscribes to that channel and copies what it hears into memory;
- on start, and after the subscription drops and comes back, a node reloads the
  whole blocklist from Redis, so nothing published while it was away is missed.

While the subscription is down a node cannot hear of new revocations. It then fails
closed (StoreUnavailable: 503) rather than accept a credential that may be revoked,
and keeps trying to resubscribe (docs/security.md, Faults). A subscription that went
silent (a half-open connection) is found by a PING every HEARTBEAT seconds that must
be answered within STORE_TIMEOUT: that bounds how long a node can miss revocations
without knowing it.

A Redis that comes back empty (or restarted, or evicted keys) has lost revocations the
other nodes and later starts would load: the EpochGuard (targets/stores/epochs.py)
checks its marker at every resubscription, before the node listens again, and every
heartbeat; a loss revokes every token issued before it was found (a global cutoff).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from typing import Any, Protocol

import hiredis
import orjson

from targets.stores.base import RevocationState, StoreUnavailable
from targets.stores.epochs import EpochGuard
from targets.stores.memory import RevocationTables
from targets.stores.redis_store import OPEN_TIMEOUT, RedisStore
from targets.stores.resp import RespConnectionError, RespError, pack

log = logging.getLogger("targets.revocations")

RETRY_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0)  # resubscribe back-off, then every second
HEARTBEAT = 1.0  # seconds between PINGs on the subscription
BLOCK_AND_PUBLISH_LUA = """
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return redis.call('PUBLISH', ARGV[2], ARGV[3])
"""
CUTOFF_AND_PUBLISH_LUA = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[4]) then
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[1])
end
return redis.call('PUBLISH', ARGV[2], ARGV[3])
"""
SCAN_COUNT = 10_000


class Revocations(Protocol):
    """Where a JWT target records and checks revocations (a Store is one)."""

    async def block_token(self, jti: str, expires: float) -> None: ...
    async def set_user_cutoff(self, user: str, cutoff: float, expires: float) -> None: ...
    async def revocation_state(self, jti: str, user: str, now: float) -> RevocationState: ...


class _Subscription(asyncio.Protocol):
    """One subscribed connection: hands each message to `on_message`."""

    def __init__(self, handshake: int, on_message: Any) -> None:
        self._reader = hiredis.Reader()
        self._handshake = handshake  # replies to AUTH/SELECT to skip before SUBSCRIBE's
        self._on_message = on_message
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for future in (self.subscribed, self.lost):  # failures are read, or need not be
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.transport: asyncio.Transport | None = None
        self.pongs: collections.deque[asyncio.Future[None]] = collections.deque()

    def ping(self) -> asyncio.Future[None]:
        """Send PING; the future is done when its pong arrives."""
        assert self.transport is not None
        pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pongs.append(pong)
        self.transport.write(pack("PING"))
        return pong

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            if isinstance(reply, hiredis.ReplyError):
                self._fail(RespError(str(reply)))
                return
            if self._handshake:
                self._handshake -= 1
            elif isinstance(reply, list) and reply and reply[0] == b"message":
                self._on_message(reply[2])
            elif isinstance(reply, list) and reply and reply[0] == b"pong" and self.pongs:
                pong = self.pongs.popleft()
                if not pong.done():
                    pong.set_result(None)
            elif (isinstance(reply, list) and reply and reply[0] == b"subscribe"
                  and not self.subscribed.done()):
                self.subscribed.set_result(None)

    def _fail(self, exc: Exception) -> None:
        for future in (self.subscribed, self.lost):
            if not future.done():
                future.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RespConnectionError(f"subscription lost: {exc or 'closed'}"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._fail(RespConnectionError("subscription silent"))


class PubSubRevocations:
    """Revocations checked in memory, written to Redis and broadcast to every node."""

    def __init__(self, store: RedisStore, namespace: str,
                 guard: EpochGuard | None = None) -> None:
        self.store = store
        self.guard = guard
        self.channel = f"{namespace}:revocations"
        self._blocked_prefix = f"{namespace}:bl:"
        self._cutoff_prefix = f"{namespace}:cut:"
        self.local = RevocationTables()
        self._added = 0
        self.is_listening = False
        self.heard = 0  # well-formed messages received (tests watch it)
        self._subscription: _Subscription | None = None
        self._keeper: asyncio.Task[None] | None = None

    # -- the hot path --------------------------------------------------------------
    async def revocation_state(self, jti: str, user: str, now: float) -> RevocationState:
        if not self.is_listening:
            raise StoreUnavailable("revocation channel down: cannot know of new revocations")
        return self.local.state(jti, user, now)

    # -- revoking ------------------------------------------------------------------
    async def block_token(self, jti: str, expires: float) -> None:
        await self._write_and_publish(
            BLOCK_AND_PUBLISH_LUA, self.store.key("bl", jti), ["bl", jti, True, expires],
            expires)
        self._put("bl", jti, True, expires)

    async def set_user_cutoff(self, user: str, cutoff: float, expires: float) -> None:
        await self._write_and_publish(
            CUTOFF_AND_PUBLISH_LUA, self.store.key("cut", user),
            ["cut", user, float(cutoff), expires], expires, repr(float(cutoff)))
        self._put("cut", user, float(cutoff), expires)

    async def _write_and_publish(self, script: str, key: str, message: list[Any],
                                 expires: float, *extra: str) -> None:
        """The durable copy and the broadcast in one script: both happen, or neither.

        Were the write to succeed and the PUBLISH fail, the other nodes would never hear
        of the revocation while their subscriptions stayed up. Local memory is updated
        only after Redis answered, so a logout that failed here can simply be retried.
        Not retried on a lost connection: the script may have run (this node then hears
        its own message, like every other node).
        """
        ttl_ms = max(1, math.ceil((expires - time.time()) * 1000))
        await self.store.client.execute(
            "EVAL", script, 1, key, ttl_ms, self.channel, orjson.dumps(message), *extra,
            is_idempotent=False)

    def _put(self, kind: str, key: str, value: object, expires: float) -> None:
        if kind == "cut" and isinstance(value, float):
            self.local.cut_off(key, value, expires)
        else:
            self.local.block(key, expires)
        self._added += 1
        if self._added & 1023 == 0:
            self.local.purge(time.time())

    def _heard(self, payload: bytes) -> None:
        try:
            kind, key, value, expires = orjson.loads(payload)
            if kind not in ("bl", "cut") or not isinstance(key, str):
                raise ValueError(kind)
            parsed = float(value) if kind == "cut" else True
            until = float(expires)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            log.warning("ignored a malformed revocation message")
            return
        self.heard += 1
        self._put(kind, key, parsed, until)

    # -- subscription --------------------------------------------------------------
    async def open(self) -> None:
        """Subscribe and load the blocklist; raise StoreUnavailable if Redis does not answer."""
        try:
            await self._subscribe(max(self.store.client.timeout, OPEN_TIMEOUT))
        except (RespConnectionError, RespError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"Redis at {self.store.client.where}: {exc}") from exc
        self._keeper = asyncio.create_task(self._keep_subscribed())

    async def _subscribe(self, connect_within: float) -> None:
        """Subscribe first, then load what is stored: nothing falls in between."""
        address = self.store.client.address
        loop = asyncio.get_running_loop()
        handshake = address.handshake()
        async with asyncio.timeout(connect_within):  # the load below: a deadline per command
            if address.path is not None:
                _, sub = await loop.create_unix_connection(
                    lambda: _Subscription(len(handshake), self._heard), address.path)
            else:
                _, sub = await loop.create_connection(
                    lambda: _Subscription(len(handshake), self._heard),
                    address.host, address.port)
            try:
                assert sub.transport is not None
                sub.transport.write(b"".join(pack(*c) for c in handshake)
                                    + pack("SUBSCRIBE", self.channel))
                await sub.subscribed
            except BaseException:
                sub.close()
                raise
        try:
            await self._load()
            if self.guard is not None:
                # Redis may be back empty (a restart drops the subscription): know that
                # before listening again, not at the next heartbeat.
                await self.guard.check()
        except BaseException:
            sub.close()
            raise
        self._subscription = sub
        self.is_listening = True
        # Fail closed the moment the connection goes, not when the keeper next looks.
        sub.lost.add_done_callback(lambda _: self._lost(sub))

    async def _load(self) -> None:
        """Copy every stored revocation, with its remaining lifetime, into memory."""
        client = self.store.client
        for prefix in (self._blocked_prefix, self._cutoff_prefix):
            cursor = b"0"
            while True:
                cursor, keys = await client.execute(
                    "SCAN", cursor, "MATCH", f"{prefix}*", "COUNT", SCAN_COUNT)
                if keys:
                    now = time.time()
                    commands: list[tuple[Any, ...]] = [("PTTL", k) for k in keys]
                    if prefix == self._cutoff_prefix:
                        commands.append(("MGET", *keys))
                    replies = await client.pipeline(*commands)
                    values = replies[-1] if prefix == self._cutoff_prefix else None
                    for i, key in enumerate(keys):
                        ttl_ms = replies[i]
                        if not isinstance(ttl_ms, int) or ttl_ms <= 0:
                            continue  # gone, or (never here) no expiry
                        name = key.decode()[len(prefix):]
                        if values is None:
                            self._put("bl", name, True, now + ttl_ms / 1000)
                        elif values[i] is not None:
                            try:
                                cutoff = float(values[i])
                            except ValueError:
                                log.warning("ignored a malformed cutoff at %r", key)
                                continue
                            self._put("cut", name, cutoff, now + ttl_ms / 1000)
                if cursor == b"0":
                    break

    def _lost(self, sub: _Subscription) -> None:
        if self._subscription is sub:
            self.is_listening = False

    async def _keep_subscribed(self) -> None:
        attempt = 0
        while True:
            sub = self._subscription
            if sub is not None:
                await self._watch(sub)
                self.is_listening = False
                self._subscription = None
                log.warning("revocation channel lost: failing closed until resubscribed")
            try:
                # Once running, a try is bounded like a request: a stalled one is dropped.
                await self._subscribe(self.store.client.timeout)
                attempt = 0
                log.warning("revocation channel back: blocklist reloaded")
            except Exception as exc:  # whatever it was, keep trying: never stay down for good
                if not isinstance(exc, RespConnectionError | RespError | OSError | TimeoutError
                                  | StoreUnavailable):
                    log.exception("revocation channel: unexpected error while resubscribing")
                await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
                attempt += 1

    async def _watch(self, sub: _Subscription) -> None:
        """Return when the subscription is lost or misses a heartbeat (then cut it)."""
        while not sub.lost.done():
            done, _ = await asyncio.wait([sub.lost], timeout=HEARTBEAT)
            if done:
                return
            pong = sub.ping()
            done, _ = await asyncio.wait([pong, sub.lost], timeout=self.store.client.timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                log.warning("revocation channel silent for %.2f s", self.store.client.timeout)
                sub.abort()
                return

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self._subscription is not None:
            self._subscription.close()
        self.is_listening = False
