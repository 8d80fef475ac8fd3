"""Redis: pipelined connections per process (targets/stores/resp.py), hard timeouts."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator

import orjson

from targets.stores.base import (
    Epoch,
    RefreshRecord,
    RevocationState,
    SessionRecord,
    StoreFacts,
    StoreUnavailable,
)
from targets.stores.redis_bulk import BulkLoadError, chunked, send_commands
from targets.stores.redis_epoch import (
    INFO_SECTIONS,
    RAISE_CUTOFF_LUA,
    REPLACE_EPOCH_LUA,
    MarkerWatch,
    epoch_from,
    facts_from,
)
from targets.stores.resp import RespClient, RespConnectionError, RespError, pack

_USED = b"used"
OPEN_TIMEOUT = 10.0
_USE_REFRESH_LUA = """
local value = redis.call('GET', KEYS[1])
if not value then return nil end
if string.sub(value, 1, 4) ~= 'used' then
  redis.call('SET', KEYS[1], 'used' .. value, 'KEEPTTL')
end
return value
"""


# A later cutoff always wins, whatever order concurrent writes land in.
SET_CUTOFF_LUA = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""


def _session_bytes(record: SessionRecord) -> bytes:
    return orjson.dumps(
        [record.user, record.csrf, record.created, record.idle_expires, record.absolute_expires]
    )


def _session_from(raw: bytes) -> SessionRecord:
    user, csrf, created, idle, absolute = orjson.loads(raw)
    return SessionRecord(user, csrf, created, idle, absolute)


def _ttl_ms(expires: float, now: float) -> int:
    return max(1, math.ceil((expires - now) * 1000))


class RedisStore:
    """Keys under '<namespace>:'; Redis expires them, so nothing needs sweeping."""

    kind = "redis"
    unavailable_errors: tuple[type[BaseException], ...] = (
        StoreUnavailable, RespConnectionError, RespError, OSError, TimeoutError,
    )

    def __init__(self, url: str, namespace: str, timeout: float, pool_size: int) -> None:
        self.url = url
        self._ns = namespace
        self._timeout = timeout
        self._seeded = 0
        # Connections are shared by pipelining, so a few serve many concurrent requests.
        self.client = RespClient(url, timeout, size=min(pool_size, 4))
        self.epoch_key = f"{namespace}:epoch"
        # Set by the revocation epoch guard: the marker then rides along in every
        # revocation check (one more key in the same MGET, no extra round trip).
        self.marker_watch: MarkerWatch | None = None

    def key(self, kind: str, key: str) -> str:
        """The Redis key of one record: '<namespace>:<kind>:<key>'."""
        return f"{self._ns}:{kind}:{key}"

    async def open(self) -> None:
        try:
            # At start, wait longer than a request may (a busy machine); then fail fast.
            self.client.timeout = max(self._timeout, OPEN_TIMEOUT)
            try:
                await self.ping()
            finally:
                self.client.timeout = self._timeout
        except (RespConnectionError, RespError, OSError, TimeoutError) as exc:
            # Name the store (not the URL, which may hold a password) in the start-up error.
            raise StoreUnavailable(f"Redis at {self.client.where}: {exc}") from exc

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.execute("PING")

    async def clear(self) -> None:
        cursor = b"0"
        while True:
            cursor, keys = await self.client.execute(
                "SCAN", cursor, "MATCH", f"{self._ns}:*", "COUNT", 10_000
            )
            if keys:
                await self.client.execute("UNLINK", *keys)
            if cursor == b"0":
                return

    async def discard(self) -> None:
        await self.clear()  # a namespace is only its keys

    async def create_session(self, key: str, record: SessionRecord) -> None:
        ttl = _ttl_ms(min(record.idle_expires, record.absolute_expires), record.created)
        index = self.key("us", record.user)
        index_ttl = _ttl_ms(record.absolute_expires, record.created)
        await self.client.pipeline(
            ("SET", self.key("s", key), _session_bytes(record), "PX", ttl),
            ("SADD", index, key),
            # The index lives as long as its longest session: extend (GT) or set (NX).
            ("PEXPIRE", index, index_ttl, "GT"),
            ("PEXPIRE", index, index_ttl, "NX"),
        )

    async def get_session(self, key: str, now: float) -> SessionRecord | None:
        raw = await self.client.execute("GET", self.key("s", key))
        if raw is None:
            return None
        record = _session_from(raw)
        return record if record.is_live(now) else None

    async def touch_session(self, key: str, record: SessionRecord, idle_expires: float) -> None:
        updated = SessionRecord(
            record.user, record.csrf, record.created, idle_expires, record.absolute_expires
        )
        ttl = _ttl_ms(min(idle_expires, record.absolute_expires), time.time())
        await self.client.execute(
            "SET", self.key("s", key), _session_bytes(updated), "PX", ttl, "XX"
        )

    async def delete_session(self, key: str) -> bool:
        # Not retried: a GETDEL that ran before the connection dropped would, retried,
        # find nothing and report a live session as already gone.
        raw = await self.client.execute("GETDEL", self.key("s", key), is_idempotent=False)
        if raw is None:
            return False
        await self.client.execute("SREM", self.key("us", _session_from(raw).user), key)
        return True

    async def list_sessions(self, user: str, now: float) -> list[tuple[str, SessionRecord]]:
        index = self.key("us", user)
        keys = sorted(k.decode() for k in await self.client.execute("SMEMBERS", index))
        if not keys:
            return []
        raws = await self.client.execute("MGET", *(self.key("s", k) for k in keys))
        live, dead = [], []
        for key, raw in zip(keys, raws, strict=True):
            record = _session_from(raw) if raw is not None else None
            if record is not None and record.is_live(now):
                live.append((key, record))
            else:
                dead.append(key)
        if dead:
            await self.client.execute("SREM", index, *dead)
        return live

    async def delete_user_sessions(self, user: str) -> int:
        index = self.key("us", user)
        keys = [k.decode() for k in await self.client.execute("SMEMBERS", index)]
        if not keys:
            return 0
        removed = int(await self.client.execute("UNLINK", *(self.key("s", k) for k in keys)))
        await self.client.execute("UNLINK", index)
        return removed

    async def seed_sessions(self, sessions: Iterable[tuple[str, SessionRecord]]) -> int:
        """Bulk load: hand-packed SET (with TTL) and per-user SADD, pipelined in batches."""

        def batches() -> Iterator[list[bytes]]:
            for chunk in chunked(sessions):
                now = time.time()
                commands = []
                by_user: dict[str, list[bytes]] = {}
                index_ttl: dict[str, int] = {}
                for key, record in chunk:
                    ttl = _ttl_ms(min(record.idle_expires, record.absolute_expires), now)
                    commands.append(pack(b"SET", self.key("s", key).encode(),
                                         _session_bytes(record), b"PX", b"%d" % ttl))
                    by_user.setdefault(record.user, []).append(key.encode())
                    last = _ttl_ms(record.absolute_expires, now)
                    index_ttl[record.user] = max(index_ttl.get(record.user, 0), last)
                for user, keys in by_user.items():
                    index = self.key("us", user).encode()
                    commands.append(pack(b"SADD", index, *keys))
                    # As in create_session: the index lives as long as its longest session.
                    index_ms = b"%d" % index_ttl[user]
                    commands.append(pack(b"PEXPIRE", index, index_ms, b"GT"))
                    commands.append(pack(b"PEXPIRE", index, index_ms, b"NX"))
                self._seeded += len(chunk)
                yield commands

        self._seeded = 0
        try:
            await send_commands(self.url, batches(), wait=max(self._timeout, 30.0))
        except BulkLoadError as exc:
            raise StoreUnavailable(f"Redis refused the bulk load: {exc}") from exc
        return self._seeded

    async def count_sessions(self) -> int:
        count, cursor = 0, b"0"
        while True:
            cursor, keys = await self.client.execute(
                "SCAN", cursor, "MATCH", self.key("s", "*"), "COUNT", 10_000
            )
            count += len(keys)
            if cursor == b"0":
                return count

    async def block_token(self, jti: str, expires: float) -> None:
        await self.client.execute("SET", self.key("bl", jti), b"1", "PX",
                                  _ttl_ms(expires, time.time()))

    async def seed_blocklist(self, entries: Iterable[tuple[str, float]]) -> int:
        """Bulk load: hand-packed SET <ns>:bl:<jti> 1 PX <ttl>, as block_token, pipelined."""
        count = 0

        def batches() -> Iterator[list[bytes]]:
            nonlocal count
            for chunk in chunked(entries):
                now = time.time()
                yield [pack(b"SET", self.key("bl", jti).encode(), b"1", b"PX",
                            b"%d" % _ttl_ms(expires, now)) for jti, expires in chunk]
                count += len(chunk)

        try:
            await send_commands(self.url, batches(), wait=max(self._timeout, 30.0))
        except BulkLoadError as exc:
            raise StoreUnavailable(f"Redis refused the bulk load: {exc}") from exc
        return count

    async def set_user_cutoff(self, user: str, cutoff: float, expires: float) -> None:
        await self.client.execute("EVAL", SET_CUTOFF_LUA, 1, self.key("cut", user),
                                  repr(float(cutoff)), _ttl_ms(expires, time.time()))

    async def revocation_state(self, jti: str, user: str, now: float) -> RevocationState:
        watch = self.marker_watch
        if watch is None:
            blocked, cutoff = await self.client.execute(
                "MGET", self.key("bl", jti), self.key("cut", user)
            )
        else:
            blocked, cutoff, marker = await self.client.execute(
                "MGET", self.key("bl", jti), self.key("cut", user), self.epoch_key
            )
            if not watch.trusts(marker):
                # The store lost (or replaced) its marker: its "not blocked" proves nothing.
                return RevocationState(True, None)
        return RevocationState(blocked is not None, None if cutoff is None else float(cutoff))

    async def put_refresh(self, key: str, record: RefreshRecord) -> None:
        value = orjson.dumps([record.family, record.user, record.expires])
        await self.client.execute("SET", self.key("rt", key), value, "PX",
                                  _ttl_ms(record.expires, time.time()))

    async def use_refresh(self, key: str, now: float) -> RefreshRecord | None:
        # One script marks the token used and returns what it was, atomically: two
        # concurrent uses cannot both see it unused. Not retried: it may have run.
        old = await self.client.execute(
            "EVAL", _USE_REFRESH_LUA, 1, self.key("rt", key), is_idempotent=False
        )
        if old is None:
            return None
        is_used = old.startswith(_USED)
        family, user, expires = orjson.loads(old[len(_USED):] if is_used else old)
        return RefreshRecord(family, user, expires, is_used=is_used)

    async def facts(self) -> StoreFacts:
        replies = await self.client.pipeline(*(("INFO", name) for name in INFO_SECTIONS))
        return facts_from(*replies)

    async def read_epoch(self) -> tuple[Epoch | None, StoreFacts]:
        raw, *sections = await self.client.pipeline(
            ("GET", self.epoch_key), *(("INFO", name) for name in INFO_SECTIONS)
        )
        return epoch_from(raw, self.epoch_key), facts_from(*sections)

    async def replace_epoch(self, expected: Epoch | None, new: Epoch) -> Epoch | None:
        # Not retried on a lost connection: had it run, a retry would see `new` and fail.
        stored = await self.client.execute(
            "EVAL", REPLACE_EPOCH_LUA, 1, self.epoch_key,
            b"" if expected is None else expected.to_json(), new.to_json(),
            is_idempotent=False,
        )
        return epoch_from(stored, self.epoch_key)

    async def raise_epoch_cutoff(self, epoch: str, cutoff: float) -> Epoch | None:
        current = epoch_from(await self.client.execute("GET", self.epoch_key), self.epoch_key)
        if current is None or current.epoch != epoch or current.cutoff >= cutoff:
            return current
        # Within an epoch only the cutoff changes: the script checks the epoch and that
        # the stored cutoff is lower, then stores the raised marker, atomically.
        raised = Epoch(epoch, current.created, cutoff, current.server_id, current.evicted)
        stored = await self.client.execute(
            "EVAL", RAISE_CUTOFF_LUA, 1, self.epoch_key, epoch, repr(cutoff), raised.to_json(),
        )
        return epoch_from(stored, self.epoch_key)
