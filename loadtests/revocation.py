"""Revocation lag: log out, then replay the old credential on every node until rejected.

Two kinds of user share the run:
- background readers (the read scenario's users): the load the probes measure under;
- AUTHBENCH_PROBES probe users (default 2), each running trials one after another.

One trial, by one probe user:
1. log in on node k (trials take the nodes in turn) and check the credential on
   every node (a per-node memory store knows it only on node k);
2. log out on node k (AUTHBENCH_LOGOUT=all: log out everywhere, the per-user cutoff);
   t0 is when the logout's answer arrives, the moment the user was told;
3. replay GET /api/me with the old credential on every node, each node on its own
   schedule of one replay every AUTHBENCH_PROBE_INTERVAL_MS (default 20; a slot a
   slow answer overran is skipped), until that node rejects it or
   AUTHBENCH_PROBE_MAX_S (default 10) passed (hybrid: also POST /auth/refresh with
   the old refresh cookie).

A probe starts a trial every AUTHBENCH_PROBE_PERIOD_S (default 1) at most: each
trial logs in, and a real password KDF per login must not become the load itself.

Per node and credential a trial records when the first rejected replay was sent
(seconds after t0; its resolution is one interval), how many replays were accepted
after t0, and for a JWT its remaining lifetime at t0 (the bound of a strategy that
never rejects). Trials are written to probe-<host>-<pid>.json in AUTHBENCH_HDR_DIR
when Locust quits, trials cut short by the end of the run included (marked so).

Probe users log in as the last PROBE_USERS seeded users, which background users
never use: logging out everywhere must not log the background load out.

By hand:  AUTHBENCH_NODE_URLS=http://127.0.0.1:8001,http://127.0.0.1:8002 \\
          locust -f loadtests/revocation.py --host http://127.0.0.1:8001
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import events, task
from locust.env import Environment
from locust.runners import MasterRunner
from locust.user.task import LOCUST_STATE_STOPPING

from loadtests import (
    control,
    hdr,  # noqa: F401  (exact latency histograms when the runner asks)
    read,  # the module, not its class: Locust would run ReadUser too
)
from loadtests.common import PROBE_USERS, SEED_USERS, AuthUser, seed_password

FILE_FORMAT = "authbench-probe/1"
PROBES = int(os.environ.get("AUTHBENCH_PROBES", "2"))
INTERVAL = float(os.environ.get("AUTHBENCH_PROBE_INTERVAL_MS", "20")) / 1000
MAX_WAIT = float(os.environ.get("AUTHBENCH_PROBE_MAX_S", "10"))
PERIOD = float(os.environ.get("AUTHBENCH_PROBE_PERIOD_S", "1"))
RENEW_MARGIN = 1.0  # background readers renew an access token this long before its exp
LOGOUT = os.environ.get("AUTHBENCH_LOGOUT", "one")
_probe_numbers = itertools.count()


@dataclass
class Watch:
    """One credential on one node, after logout."""

    node: int
    credential: str  # "session", "access" or "refresh"
    accepted_before: bool
    before_status: int | None = None  # the check before logout (None: not checked)
    rejected_after_s: float | None = None
    accepted_after_logout: int = 0
    last_accepted_s: float | None = None
    replays: int = 0
    errors: int = 0  # neither accepted nor rejected (503, transport errors)


@dataclass
class Trial:
    """One login, logout and watch, as written to the probe file."""

    probe: int
    number: int
    mode: str
    logout: str
    login_node: int
    logout_at: float  # Unix seconds, when the logout's answer arrived
    interval_s: float
    max_wait_s: float
    expires_in_s: float | None  # the access token's exp minus t0 (JWT only)
    watches: list[Watch] = field(default_factory=list)
    observed_s: float = 0.0
    is_complete: bool = False  # False: the run ended first


TRIALS: list[Trial] = []


def _nodes(host: str) -> list[str]:
    listed = [u for u in os.environ.get("AUTHBENCH_NODE_URLS", "").split(",") if u]
    return listed or [host]


def _token_exp(token: str) -> float | None:
    """The exp claim of a JWT, read without verifying (the probe is only a client)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


class RevocationProbe(AuthUser):
    """Runs trials back to back; each watches one logged-out credential on every node."""

    fixed_count = PROBES

    def prepare(self) -> None:
        self.number = next(_probe_numbers)
        # Workers count their probes from 0 each: the worker's index keeps users apart.
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.username = f"user{SEED_USERS - 1 - (worker * PROBES + self.number) % PROBE_USERS}"
        self.nodes = _nodes(self.host or "")
        self.trials = 0
        with self.client.get("/health", name="/health") as answer:
            self.store = answer.json().get("store", "memory") if answer.ok else "memory"
        self.started = time.time()

    def _is_stopping(self) -> bool:
        """The run is ending: finish now, so probes do not stretch the measured window."""
        return self._state == LOCUST_STATE_STOPPING

    def _plain(self) -> None:
        self.client.cookiejar.clear()  # every request carries its credential explicitly

    @task
    def trial(self) -> None:
        # Once the window is measured (after its warm-up), and one trial per PERIOD at most.
        window = control.current
        first = window.measure_from if window is not None else self.started
        gevent.sleep(max(0.0, first + self.trials * PERIOD - time.time()))
        if self._is_stopping():
            return
        node = self.trials % len(self.nodes)
        self.trials += 1
        credential = self._login(self.nodes[node])
        if credential is None:
            gevent.sleep(0.5)
            return
        body, cookies = credential
        me_headers = self._me_headers(body, cookies)
        before = [self._get_me(url, me_headers, "/api/me (probe check)") for url in self.nodes]
        if not self._logout(self.nodes[node], me_headers, body):
            gevent.sleep(0.5)
            return
        t0 = time.time()
        exp = _token_exp(body.get("access_token", ""))
        trial = Trial(self.number, self.trials, self.mode, LOGOUT, node, t0, INTERVAL, MAX_WAIT,
                      None if exp is None else exp - t0)
        kind = "session" if self.mode == "session" else "access"
        trial.watches = [Watch(i, kind, code == 200, code) for i, code in enumerate(before)]
        if self.mode == "hybrid" and "rt" in cookies:
            # A refresh token cannot be tried before logout without spending it: it is
            # known where its family is stored (every node, or only the login node).
            trial.watches += [Watch(i, "refresh", self.store != "memory" or i == node)
                              for i in range(len(self.nodes))]
        TRIALS.append(trial)
        self._watch(trial, me_headers, cookies, body)

    def _login(self, url: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        self._plain()
        credentials = {"username": self.username, "password": seed_password(self.username)}
        with self.client.post(f"{url}/auth/login", json=credentials,
                              name="/auth/login (probe)", catch_response=True) as answer:
            if not answer.ok:
                answer.failure(f"probe login failed: HTTP {answer.status_code}")
                return None
            body = answer.json()
        cookies = {c.name: c.value or "" for c in self.client.cookiejar}
        self._plain()
        return body, cookies

    @staticmethod
    def _me_headers(body: dict[str, Any], cookies: dict[str, str]) -> dict[str, str]:
        if "access_token" in body:
            return {"Authorization": f"Bearer {body['access_token']}"}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items() if k != "rt")}

    def _get_me(self, url: str, headers: dict[str, str], name: str) -> int:
        with self.client.get(f"{url}/api/me", headers=headers, name=name,
                             catch_response=True) as answer:
            code = int(answer.status_code)
            if code in (200, 401):
                answer.success()  # both are answers the probe counts, not failures
        self._plain()
        return code

    def _logout(self, url: str, headers: dict[str, str], body: dict[str, Any]) -> bool:
        csrf = {"X-CSRF-Token": body["csrf_token"]} if "csrf_token" in body else {}
        method, path = ("DELETE", "/auth/sessions") if LOGOUT == "all" else ("POST", "/auth/logout")
        with self.client.request(method, f"{url}{path}", headers={**headers, **csrf},
                                 name=f"{path} (probe)", catch_response=True) as answer:
            code = int(answer.status_code)
            if code != 200:
                answer.failure(f"probe logout failed: HTTP {code}")
        self._plain()
        return code == 200

    def _replay_refresh(self, url: str, cookies: dict[str, str], body: dict[str, Any]) -> int:
        headers = {"Cookie": f"rt={cookies['rt']}", "X-CSRF-Token": body.get("csrf_token", "")}
        with self.client.post(f"{url}/auth/refresh", headers=headers,
                              name="/auth/refresh (replay)", catch_response=True) as answer:
            code = int(answer.status_code)
            if code in (200, 401):
                answer.success()
        self._plain()
        return code

    def _watch(self, trial: Trial, me_headers: dict[str, str], cookies: dict[str, str],
               body: dict[str, Any]) -> None:
        """Every node on its own schedule, so a slow node never delays the others."""
        gevent.joinall([gevent.spawn(self._watch_one, trial, watch, me_headers, cookies, body)
                        for watch in trial.watches])
        trial.observed_s = time.time() - trial.logout_at
        trial.is_complete = not self._is_stopping() or all(
            w.rejected_after_s is not None for w in trial.watches)

    def _watch_one(self, trial: Trial, watch: Watch, me_headers: dict[str, str],
                   cookies: dict[str, str], body: dict[str, Any]) -> None:
        next_replay = trial.logout_at
        while watch.rejected_after_s is None and not self._is_stopping():
            now = time.time()
            if now - trial.logout_at > MAX_WAIT:
                return
            self._replay(trial, watch, me_headers, cookies, body)
            # The next slot of the fixed schedule still ahead: a slow answer skips the
            # slots it overran rather than firing them back to back.
            next_replay += INTERVAL * max(1, math.ceil((time.time() - next_replay) / INTERVAL))
            gevent.sleep(max(0.0, next_replay - time.time()))

    def _replay(self, trial: Trial, watch: Watch, me_headers: dict[str, str],
                cookies: dict[str, str], body: dict[str, Any]) -> None:
        url = self.nodes[watch.node]
        sent = time.time() - trial.logout_at
        if watch.credential == "refresh":
            code = self._replay_refresh(url, cookies, body)
        else:
            code = self._get_me(url, me_headers, "/api/me (replay)")
        watch.replays += 1
        if code == 200:
            watch.accepted_after_logout += 1
            watch.last_accepted_s = sent
        elif code == 401:
            watch.rejected_after_s = sent
        else:
            watch.errors += 1


class BackgroundReader(read.ReadUser):
    """The read scenario's user, as the load the probes run under.

    It renews its access token shortly before exp (hybrid: refresh; jwt: log in
    again), as a well-behaved client does, so short ACCESS_TTL cells measure reads,
    not expiries.
    """

    expires: float | None = None

    def remember(self, credential: dict[str, Any]) -> None:
        super().remember(credential)
        if "access_token" in credential:
            self.expires = _token_exp(credential["access_token"])

    def _renew_if_due(self) -> None:
        if self.expires is not None and time.time() > self.expires - RENEW_MARGIN:
            self.expires = None
            if self.mode == "hybrid":
                self.refresh_tokens()
            else:
                self.login()

    def read_profile(self) -> None:
        self._renew_if_due()
        super().read_profile()

    def write_item(self) -> None:
        self._renew_if_due()
        super().write_item()


@events.quitting.add_listener
def _save(environment: Environment, **_: Any) -> None:
    folder = os.environ.get("AUTHBENCH_HDR_DIR")
    if folder is None or isinstance(environment.runner, MasterRunner) or not TRIALS:
        return
    body = {"format": FILE_FORMAT, "host": socket.gethostname(), "pid": os.getpid(),
            "trials": [asdict(t) for t in TRIALS]}
    target = Path(folder) / f"probe-{socket.gethostname()}-{os.getpid()}.json"
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(body))
    partial.replace(target)
