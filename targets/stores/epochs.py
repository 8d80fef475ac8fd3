"""Lost revocation state: found by the store's marker, answered with a global cutoff.

A blocklist that loses entries (a Redis restarted without persistence, FLUSHALL, an
eviction, a TRUNCATE, a memory store in a new process) would silently make revoked
tokens valid again. Each store therefore keeps a marker of its revocation state (an
Epoch: a random id, written once with no expiry, see base.py), and the EpochGuard here
watches it:

- at start, before the target serves; then every HEARTBEAT seconds; in Redis also in
  every revocation check (the marker is one more key of the same MGET) and, for
  pub/sub nodes, at every resubscription;
- when the marker is gone, or Redis restarted or evicted keys since it was written,
  the guard writes a new one and every token issued before that new marker was
  confirmed is revoked (the global cutoff). The moment of detection, not the last
  time the marker was seen intact: a token issued in between may have been revoked
  and lost too. The cutoff is kept in memory and written into the new marker, so
  other nodes and later starts hold tokens to it as well;
- when another node has replaced the marker, this node adopts its cutoff and, as it
  cannot know what it missed, also revokes every token issued before it noticed.

Between a loss and its detection, a check answered from the emptied store can pass a
revoked token: never in Redis blocklists for a lost marker (it comes with the
answer), at most HEARTBEAT + STORE_TIMEOUT for the rest. A guard that cannot check
for STALE_FACTOR x (HEARTBEAT + STORE_TIMEOUT) fails closed (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from targets.stores.base import Epoch, Store, StoreFacts, StoreUnavailable
from targets.stores.redis_store import RedisStore

log = logging.getLogger("targets.epochs")

HEARTBEAT = 1.0  # seconds between checks of the marker
MIN_INTERVAL = 0.05  # seconds: checks asked for by requests are no closer than this
STALE_FACTOR = 2  # unchecked for 2 x (HEARTBEAT + STORE_TIMEOUT): fail closed
ATTEMPTS = 3  # races with other nodes replacing the marker, within one check


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


class EpochGuard:
    """Watches one store's revocation marker and holds the global cutoff for tokens."""

    def __init__(self, store: Store, timeout: float, heartbeat: float = HEARTBEAT) -> None:
        self.store = store
        self.heartbeat = heartbeat
        self.cutoff = 0.0  # tokens issued (iat) before this are revoked
        self.known: Epoch | None = None
        self.lost_at: float | None = None
        self.loss_reason: str | None = None
        self.losses = 0
        self.facts = StoreFacts()
        self._known_raw: bytes | None = None
        self._verified = 0.0  # time.monotonic() of the last check that completed
        self._stale_after = STALE_FACTOR * (heartbeat + timeout)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    # -- the hot path --------------------------------------------------------------
    def is_revoked(self, issued_at: float) -> bool:
        """True for a token issued before the global cutoff."""
        return issued_at < self.cutoff

    def ensure_checked(self) -> None:
        """Raise StoreUnavailable when the marker has gone unchecked for too long."""
        if self._keeper is not None and time.monotonic() - self._verified > self._stale_after:
            raise StoreUnavailable("revocation state unverified: cannot tell if it was lost")

    def trusts(self, raw: bytes | None) -> bool:
        """Judge the marker read with a revocation check (Redis); False: do not trust it."""
        if raw is not None and raw == self._known_raw:
            return True
        known = self.known
        if raw is not None and known is not None:
            try:
                seen = Epoch.from_json(raw)
            except ValueError:
                seen = None
            if seen is not None and (seen.epoch, seen.server_id, seen.evicted) == (
                    known.epoch, known.server_id, known.evicted):
                self._adopt(seen)  # the same epoch, its cutoff raised by another node
                return True
        self._wake.set()  # gone or replaced: check now rather than at the next heartbeat
        return False

    # -- checking ------------------------------------------------------------------
    async def open(self) -> None:
        """The first check, before the target serves; then check every heartbeat."""
        await self.check(is_start=True)
        if isinstance(self.store, RedisStore):
            self.store.marker_watch = self
        if self.store.kind != "memory":  # a memory store cannot lose data while running
            self._keeper = asyncio.create_task(self._keep_checking())

    async def close(self) -> None:
        if isinstance(self.store, RedisStore) and self.store.marker_watch is self:
            self.store.marker_watch = None
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None

    async def check(self, is_start: bool = False) -> None:
        """Read the marker and act on what it says; StoreUnavailable if the store fails."""
        async with self._lock:
            for _ in range(ATTEMPTS):
                marker, self.facts = await self.store.read_epoch()
                if await self._settle(marker, is_start):
                    self._verified = time.monotonic()
                    return
            raise StoreUnavailable("the revocation marker kept changing while being replaced")

    def _problem(self, marker: Epoch | None, is_start: bool) -> str | None:
        """Why the stored revocation state cannot be trusted, or None."""
        facts = self.facts
        if marker is None:
            if self.store.kind == "memory":
                return "a memory store starts empty: revocations before this start are lost"
            if is_start:
                return ("no revocation marker: a first start on this namespace, or the "
                        "store lost its data")
            return "the revocation marker is gone: the store lost its data"
        if facts.server_id is not None and marker.server_id != facts.server_id:
            return ("Redis restarted since the marker was written (run_id changed): what it "
                    "reloaded, if anything, may predate the last revocations")
        if facts.evicted is not None and marker.evicted != facts.evicted:
            return (f"Redis evicted keys (evicted_keys {marker.evicted} -> {facts.evicted}): "
                    "blocklist entries may be among them")
        return None

    async def _settle(self, marker: Epoch | None, is_start: bool) -> bool:
        """Bring this node and the store into agreement; False: the marker moved, read again."""
        problem = self._problem(marker, is_start)
        if problem is None:
            assert marker is not None
            known = self.known
            if known is not None and marker.epoch != known.epoch:
                self._lose(f"another node replaced the revocation marker ({known.epoch} -> "
                           f"{marker.epoch}) after a loss", time.time(), is_start)
            self._adopt(marker)
            await self._write_back()
            return True
        # Revoke everything issued up to the moment the new marker is confirmed: a token
        # issued before then may have had its revocation lost.
        new = Epoch(secrets.token_hex(8), time.time(), max(self.cutoff, time.time()),
                    self.facts.server_id, self.facts.evicted)
        stored = await self.store.replace_epoch(marker, new)
        if stored != new:
            return False  # another node replaced it first: settle against its marker
        self._lose(problem, time.time(), is_start)
        self._adopt(new)
        await self._write_back()
        return True

    def _lose(self, reason: str, now: float, is_start: bool) -> None:
        self.cutoff = max(self.cutoff, now)
        self.lost_at, self.loss_reason = now, reason
        self.losses += 1
        # At start a missing marker is the rule for a memory store or a new namespace;
        # while running it is a loss that logs users out.
        level = logging.WARNING if is_start else logging.ERROR
        log.log(level, "revocation state lost (%s store): %s; every token issued before %s "
                "is now rejected", self.store.kind, reason, _when(self.cutoff))

    def _adopt(self, marker: Epoch) -> None:
        self.known = marker
        self._known_raw = marker.to_json()
        self.cutoff = max(self.cutoff, marker.cutoff)

    async def _write_back(self) -> None:
        """Store this node's cutoff in the marker, where it is higher than the stored one."""
        known = self.known
        if known is None or known.cutoff >= self.cutoff:
            return
        stored = await self.store.raise_epoch_cutoff(known.epoch, self.cutoff)
        if stored is not None and stored.epoch == known.epoch:
            self._adopt(stored)

    async def _keep_checking(self) -> None:
        is_failing = False
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.heartbeat):
                    await self._wake.wait()
            await asyncio.sleep(MIN_INTERVAL)
            self._wake.clear()
            try:
                await self.check()
                if is_failing:
                    log.warning("revocation state: checking again")
                is_failing = False
            except Exception as exc:  # whatever it was, keep checking: never stop for good
                if not isinstance(exc, (*self.store.unavailable_errors, StoreUnavailable)):
                    log.exception("revocation state: unexpected error while checking")
                elif not is_failing:
                    log.warning("revocation state: cannot check the marker (%s: %s)",
                                type(exc).__name__, exc)
                is_failing = True

    # -- reporting -----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What /health shows: the epoch, the last loss and the global cutoff."""
        known = self.known
        return {
            "epoch": known.epoch if known is not None else None,
            "epoch_created": known.created if known is not None else None,
            "lost_at": self.lost_at,
            "loss_reason": self.loss_reason,
            "losses": self.losses,
            "global_cutoff": self.cutoff,
            "checked_s_ago": (round(time.monotonic() - self._verified, 3)
                              if self._verified else None),
        }
