"""The store fails under load: readers, revocation probes, and revoked credentials replayed.

The revocation scenario's users (loadtests/revocation.py: background readers and probes
that log out and replay) plus:

- readers that log in again when a credential they hold is refused (a status in the
  adapter's `rejected`), as a real client does after its session was lost;
- one RevokedReplayer: it revokes a credential of its own every REVOKE_EVERY seconds
  (log in, the adapter's logout, its first hot request seen rejected on every node),
  keeps up to MAX_REVOKED of them, and replays each on every node every REPLAY_EVERY
  seconds for the whole window. A 2xx for one of them is a revoked credential accepted
  again (e.g. a blocklist lost with its store): the figure that must stay 0. A logout
  that never revokes (GIVE_UP_AFTER times in a row) leaves it nothing to replay.

Every request is also counted second by second (loadtests/timeline.py).

By hand:  AUTHBENCH_NODE_URLS=http://127.0.0.1:8001,http://127.0.0.1:8002 \\
          locust -f loadtests/faults.py --host http://127.0.0.1:8001
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
from locust import task

from adapters.exchange import Prepared, prepare
from loadtests import (
    revocation,  # the module, not its classes: Locust runs every user class it finds
    timeline,  # also records requests second by second when the runner asks
)
from loadtests.common import ADAPTER, PROBE_USERS, USERS, Answer, AuthUser

REVOKE_EVERY = 1.5  # seconds between new revoked credentials
MAX_REVOKED = 12
REPLAY_EVERY = 0.5  # seconds between replays of every revoked credential
CONFIRM_WITHIN = 2.0  # seconds for every node to reject a credential just logged out
GIVE_UP_AFTER = 3  # logouts that never revoke (JWT without revocation): stop trying


class Probe(revocation.RevocationProbe):
    """The revocation scenario's probe, unchanged: it keeps measuring the lag."""


class Reader(revocation.BackgroundReader):
    """A background reader that logs in again when its credential is refused."""

    last_status = 0

    def send(self, request: Prepared, base: str = "", suffix: str = "",
             accept: tuple[int, ...] = (), capture_into: dict[str, str] | None = None
             ) -> Answer:
        answer = super().send(request, base, suffix, accept, capture_into)
        self.last_status = answer.status
        return answer

    def _relogin_if_refused(self, action: Callable[[], None]) -> None:
        """The action, then a new login if its (last) request was refused."""
        self.last_status = 0
        action()
        if ADAPTER.is_rejected(self.last_status):
            self.login()

    def read_profile(self) -> None:
        self._relogin_if_refused(super().read_profile)

    def write_item(self) -> None:
        self._relogin_if_refused(super().write_item)


class RevokedReplayer(AuthUser):
    """Credentials revoked before (and during) the fault, replayed on every node."""

    fixed_count = 1

    def prepare(self) -> None:
        # Below the revocation probes' users (the last ones), above the readers' range.
        self.index = (USERS - PROBE_USERS) % USERS
        self.nodes = revocation._nodes(self.host or "")
        self.revoked: list[Prepared] = []
        self.next_revoke = 0.0
        self.unrevoked = 0

    @task
    def replay(self) -> None:
        now = time.time()
        if (len(self.revoked) < MAX_REVOKED and self.unrevoked < GIVE_UP_AFTER
                and now >= self.next_revoke):
            self.next_revoke = now + REVOKE_EVERY
            self._revoke_one()
        for request in self.revoked:
            for url in self.nodes:
                self._replay_revoked(request, url)
        gevent.sleep(max(0.0, now + REPLAY_EVERY - time.time()))

    def _replay_revoked(self, request: Prepared, url: str) -> None:
        """A revoked credential: rejected is right, accepted (2xx) is the failure."""
        with self.client.request(request.method, f"{url}{request.path}",
                                 name=f"{request.name} {timeline.REVOKED_REPLAY}",
                                 # bytes go out as they are (the stubs say str or dict)
                                 data=request.content,  # type: ignore[arg-type]
                                 headers=request.headers, catch_response=True) as answer:
            status = int(answer.status_code or 0)
            if 200 <= status < 300:
                answer.failure("a revoked credential was accepted")
            elif ADAPTER.is_rejected(status):
                answer.success()
            elif status >= 400 or status == 0:
                answer.failure(f"HTTP {status}")

    def _revoke_one(self) -> None:
        url = self.nodes[0]
        values = self.login_as(self.index, base=url, suffix=" (replayer)")
        if values is None:
            return
        check = prepare(ADAPTER.hot[0], ADAPTER.send, values)
        logout = None if ADAPTER.logout is None else prepare(ADAPTER.logout, ADAPTER.send,
                                                              values)
        if check is None or logout is None:
            self.unrevoked = GIVE_UP_AFTER  # nothing this adapter can revoke: stop trying
            return
        answer = self.send(logout, url, " (replayer)")
        if not answer.ok:
            if 0 < answer.status < 400:  # send counts only 400 and above as failures
                revocation.report_failure(self.environment, f"{logout.name} (replayer)",
                                          f"replayer logout: HTTP {answer.status}")
            return
        if self._is_rejected_everywhere(check):
            self.revoked.append(check)
        else:
            self.unrevoked += 1

    def _is_rejected_everywhere(self, check: Prepared) -> bool:
        deadline = time.time() + CONFIRM_WITHIN
        pending = list(self.nodes)
        accept = tuple(ADAPTER.rejected)  # accepted so soon after logout: the lag, not a fault
        while pending and time.time() < deadline:
            for url in list(pending):
                answer = self.send(check, url, " (replayer check, replay)", accept)
                if ADAPTER.is_rejected(answer.status):
                    pending.remove(url)
            if pending:
                gevent.sleep(0.05)
        return not pending
