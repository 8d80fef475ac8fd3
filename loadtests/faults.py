"""The store fails under load: readers, revocation probes, and revoked credentials replayed.

The revocation scenario's users (loadtests/revocation.py: background readers and probes
that log out and replay) plus:

- readers that log in again when a credential they hold is refused (401), as a real
  client does after its session was lost;
- one RevokedReplayer: it revokes a credential of its own every REVOKE_EVERY seconds
  (log in, log out, seen rejected on every node), keeps up to MAX_REVOKED of them, and
  replays each on every node every REPLAY_EVERY seconds for the whole window. A 200
  for one of them is a revoked credential accepted again (e.g. a blocklist lost with
  its store): the figure that must stay 0.

Every request is also counted second by second (loadtests/timeline.py).

By hand:  AUTHBENCH_NODE_URLS=http://127.0.0.1:8001,http://127.0.0.1:8002 \\
          locust -f loadtests/faults.py --host http://127.0.0.1:8001
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import task

from loadtests import (
    revocation,  # the module, not its classes: Locust runs every user class it finds
    timeline,  # also records requests second by second when the runner asks
)
from loadtests.common import PROBE_USERS, SEED_USERS, AuthUser, seed_password

REVOKE_EVERY = 1.5  # seconds between new revoked credentials
MAX_REVOKED = 12
REPLAY_EVERY = 0.5  # seconds between replays of every revoked credential
CONFIRM_WITHIN = 2.0  # seconds for every node to reject a credential just logged out
GIVE_UP_AFTER = 3  # logouts that never revoke (JWT without revocation): stop trying


class Probe(revocation.RevocationProbe):
    """The revocation scenario's probe, unchanged: it keeps measuring the lag."""


class Reader(revocation.BackgroundReader):
    """A background reader that logs in again when its credential is refused."""

    def _relogin_if_refused(self, status: int) -> None:
        if status == 401:
            self.login()

    def read_profile(self) -> None:
        self._renew_if_due()
        answer = self.client.get("/api/me", headers=self.headers, name="/api/me")
        self._relogin_if_refused(int(answer.status_code or 0))

    def write_item(self) -> None:
        self._renew_if_due()
        answer = self.client.post("/api/items", json={"name": "note", "size": 1},
                                  headers=self.headers, name="/api/items")
        self._relogin_if_refused(int(answer.status_code or 0))


class RevokedReplayer(AuthUser):
    """Credentials revoked before (and during) the fault, replayed on every node."""

    fixed_count = 1

    def prepare(self) -> None:
        # Below the revocation probes' users (the last ones), above the readers' range.
        self.username = f"user{SEED_USERS - PROBE_USERS}"
        self.nodes = revocation._nodes(self.host or "")
        self.revoked: list[dict[str, str]] = []
        self.next_revoke = 0.0
        self.unrevoked = 0

    @task
    def replay(self) -> None:
        now = time.time()
        if (len(self.revoked) < MAX_REVOKED and self.unrevoked < GIVE_UP_AFTER
                and now >= self.next_revoke):
            self.next_revoke = now + REVOKE_EVERY
            self._revoke_one()
        for headers in self.revoked:
            for url in self.nodes:
                with self.client.get(f"{url}/api/me", headers=headers,
                                     name=f"/api/me {timeline.REVOKED_REPLAY}",
                                     catch_response=True) as answer:
                    if answer.status_code == 200:
                        answer.failure("a revoked credential was accepted")
                    elif answer.status_code == 401:
                        answer.success()
                self.client.cookiejar.clear()
        gevent.sleep(max(0.0, now + REPLAY_EVERY - time.time()))

    def _revoke_one(self) -> None:
        self.client.cookiejar.clear()
        url = self.nodes[0]
        credentials = {"username": self.username, "password": seed_password(self.username)}
        with self.client.post(f"{url}/auth/login", json=credentials,
                              name="/auth/login (replayer)", catch_response=True) as answer:
            if not answer.ok:
                answer.failure(f"replayer login failed: HTTP {answer.status_code}")
                return
            body: dict[str, Any] = answer.json()
        cookies = {c.name: c.value or "" for c in self.client.cookiejar}
        self.client.cookiejar.clear()
        headers = revocation.RevocationProbe._me_headers(body, cookies)
        csrf = {"X-CSRF-Token": body["csrf_token"]} if "csrf_token" in body else {}
        with self.client.post(f"{url}/auth/logout", headers={**headers, **csrf},
                              name="/auth/logout (replayer)", catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"replayer logout failed: HTTP {answer.status_code}")
                return
        self.client.cookiejar.clear()
        if self._is_rejected_everywhere(headers):
            self.revoked.append(headers)
        else:
            self.unrevoked += 1

    def _is_rejected_everywhere(self, headers: dict[str, str]) -> bool:
        deadline = time.time() + CONFIRM_WITHIN
        pending = list(self.nodes)
        while pending and time.time() < deadline:
            for url in list(pending):
                with self.client.get(f"{url}/api/me", headers=headers,
                                     name="/api/me (replayer check, replay)",
                                     catch_response=True) as answer:
                    if answer.status_code in (200, 401):
                        answer.success()  # accepted so soon after logout: the lag, not a fault
                    if answer.status_code == 401:
                        pending.remove(url)
                self.client.cookiejar.clear()
            if pending:
                gevent.sleep(0.05)
        return not pending
