"""Revocation lag: log out, then replay the old credential on every node until rejected.

The API is the adapter's (loadtests/common.py: the twins' adapters/twins.toml unless
AUTHBENCH_API names another). Two kinds of user share the run:
- background readers (the read scenario's users): the load the probes measure under;
- AUTHBENCH_PROBES probe users (default 2), each running trials one after another.

One trial, by one probe user:
1. log in on node k (trials take the nodes in turn) and check the credential with the
   adapter's first hot request on every node (a per-node memory store knows it only on
   node k);
2. log out on node k with the adapter's logout (AUTHBENCH_LOGOUT=all: its logout_all,
   the per-user cutoff); t0 is when the logout's answer arrives, the moment the user
   was told. A logout answered with anything but 2xx is a failure, and no trial;
3. replay the first hot request with the old credential on every node, each node on its
   own schedule of one replay every AUTHBENCH_PROBE_INTERVAL_MS (default 20; a slot a
   slow answer overran is skipped), until that node rejects it or
   AUTHBENCH_PROBE_MAX_S (default 10) passed; where the adapter's refresh request
   applies to the old values (the twins' hybrid mode), it is replayed too.

No status code is taken on trust: a 2xx answer accepted the credential, a status in the
adapter's `rejected` refused it, and anything else counts as an error. A logout that
answers 2xx but leaves the credential working is watched like any other, until
AUTHBENCH_PROBE_MAX_S: the file records what was accepted after it, and no rejection.

A probe starts a trial every AUTHBENCH_PROBE_PERIOD_S (default 1) at most: each
trial logs in, and a real password KDF per login must not become the load itself.

Per node and credential a trial records when the first rejected replay was sent
(seconds after t0; its resolution is one interval), how many replays were accepted
after t0, and when a captured value is a JWT, its remaining lifetime at t0 (the bound
of a strategy that never rejects). Trials are written to probe-<host>-<pid>.json in
AUTHBENCH_HDR_DIR when Locust quits, trials cut short by the end of the run included
(marked so). A worker with no AUTHBENCH_HDR_DIR (on another host) sends its trials so
far with each window's histograms instead, and its master writes the file: trials still
running as the window's data leaves are cut short there (is_complete false). A refresh
credential cannot be checked before logout without spending it: it counts as known on
every node when AUTHBENCH_STORE (the variant's store, set by the runner) is shared, on
the login node alone when it is "memory" (the default).

Probe users log in as the last PROBE_USERS users, which background users never use
when there are more than 2 * PROBE_USERS users: logging out everywhere must not log the
background load out. With fewer users, probes and load share them, and a probe's
logout (above all AUTHBENCH_LOGOUT=all) may log a background reader out.

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
from locust.runners import MasterRunner, WorkerRunner
from locust.user.task import LOCUST_STATE_STOPPING

from adapters.exchange import Prepared, prepare
from loadtests import (
    control,
    gather,
    hdr,  # noqa: F401  (exact latency histograms when the runner asks)
    read,  # the module, not its class: Locust would run ReadUser too
)
from loadtests.common import ADAPTER, MODE, PROBE_USERS, USERS, Answer, AuthUser

FILE_FORMAT = "authbench-probe/1"
KIND = "probe"  # its files: probe-<host>-<pid>.json
PROBES = int(os.environ.get("AUTHBENCH_PROBES", "2"))
INTERVAL = float(os.environ.get("AUTHBENCH_PROBE_INTERVAL_MS", "20")) / 1000
MAX_WAIT = float(os.environ.get("AUTHBENCH_PROBE_MAX_S", "10"))
PERIOD = float(os.environ.get("AUTHBENCH_PROBE_PERIOD_S", "1"))
RENEW_MARGIN = 1.0  # background readers renew an access token this long before its exp
LOGOUT = os.environ.get("AUTHBENCH_LOGOUT", "one")
# Where refresh families live: "memory" keeps each in its login node's memory alone.
STORE = os.environ.get("AUTHBENCH_STORE", "memory")
ACCEPTED = tuple(ADAPTER.rejected)  # answers the probe counts, not failures (with 2xx)
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


def probe_user(number: int) -> int:
    """The index of the user the number-th probe logs in as: among the last PROBE_USERS
    (which load users never use) when there are enough users, else any of them."""
    spread = PROBE_USERS if USERS > 2 * PROBE_USERS else USERS
    return USERS - 1 - number % spread


def report_failure(environment: Environment, name: str, why: str) -> None:
    """What a probe could not do, counted as a failure where the run shows them (Locust's
    statistics; a request of type PROBE)."""
    environment.events.request.fire(
        request_type="PROBE", name=name, response_time=0.0, response_length=0,
        exception=RuntimeError(why), context={}, response=None, url=name)


def _is_accepted(status: int) -> bool:
    return 200 <= status < 300


def _token_exp(token: str) -> float | None:
    """The exp claim of a JWT, read without verifying (the probe is only a client)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


def _values_exp(values: dict[str, str]) -> float | None:
    """The exp of the first captured value that is a JWT (the access token, by the
    adapter's capture order), or None: nothing expires on its own."""
    for value in values.values():
        exp = _token_exp(value)
        if exp is not None:
            return exp
    return None


class RevocationProbe(AuthUser):
    """Runs trials back to back; each watches one logged-out credential on every node."""

    fixed_count = PROBES

    def prepare(self) -> None:
        self.number = next(_probe_numbers)
        # Workers count their probes from 0 each: the worker's index keeps users apart.
        worker = getattr(self.environment.runner, "worker_index", 0) or 0
        self.index = probe_user(worker * PROBES + self.number)
        self.nodes = _nodes(self.host or "")
        self.trials = 0
        self.started = time.time()

    def _is_stopping(self) -> bool:
        """The run is ending: finish now, so probes do not stretch the measured window."""
        return self._state == LOCUST_STATE_STOPPING

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
        url = self.nodes[node]
        values = self.login_as(self.index, base=url, suffix=" (probe)")
        if values is None:
            gevent.sleep(0.5)
            return
        check = prepare(ADAPTER.hot[0], ADAPTER.send, values)
        ending = ADAPTER.logout_all if LOGOUT == "all" else ADAPTER.logout
        logout = None if ending is None else prepare(ending, ADAPTER.send, values)
        if check is None or logout is None:
            report_failure(self.environment, "(probe)",
                           "the adapter's first hot request does not apply after login"
                           if check is None else
                           f"the adapter has no logout that applies (AUTHBENCH_LOGOUT={LOGOUT})")
            gevent.sleep(PERIOD)
            return
        before = [self.send(check, base, " (probe check)", ACCEPTED).status
                  for base in self.nodes]
        answer = self.send(logout, url, " (probe)")
        if not answer.ok:
            if 0 < answer.status < 400:  # send counts only 400 and above as failures
                report_failure(self.environment, f"{logout.name} (probe)",
                               f"probe logout failed: HTTP {answer.status}")
            gevent.sleep(0.5)
            return
        t0 = time.time()
        exp = _values_exp(values)
        trial = Trial(self.number, self.trials, MODE, LOGOUT, node, t0, INTERVAL, MAX_WAIT,
                      None if exp is None else exp - t0)
        kind = "session" if MODE == "session" else "access"
        trial.watches = [Watch(i, kind, _is_accepted(code), code)
                         for i, code in enumerate(before)]
        refresh = None if ADAPTER.refresh is None else \
            prepare(ADAPTER.refresh, ADAPTER.send, values)
        if refresh is not None:
            # A refresh token cannot be tried before logout without spending it: it is
            # known where its family is stored (every node, or only the login node).
            trial.watches += [Watch(i, "refresh", STORE != "memory" or i == node)
                              for i in range(len(self.nodes))]
        TRIALS.append(trial)
        self._watch(trial, check, refresh)

    def _watch(self, trial: Trial, check: Prepared, refresh: Prepared | None) -> None:
        """Every node on its own schedule, so a slow node never delays the others."""
        gevent.joinall([gevent.spawn(self._watch_one, trial, watch,
                                     check if watch.credential != "refresh" or refresh is None
                                     else refresh)
                        for watch in trial.watches])
        trial.observed_s = time.time() - trial.logout_at
        trial.is_complete = not self._is_stopping() or all(
            w.rejected_after_s is not None for w in trial.watches)

    def _watch_one(self, trial: Trial, watch: Watch, replay: Prepared) -> None:
        next_replay = trial.logout_at
        while watch.rejected_after_s is None and not self._is_stopping():
            now = time.time()
            if now - trial.logout_at > MAX_WAIT:
                return
            self._replay(trial, watch, replay)
            # The next slot of the fixed schedule still ahead: a slow answer skips the
            # slots it overran rather than firing them back to back.
            next_replay += INTERVAL * max(1, math.ceil((time.time() - next_replay) / INTERVAL))
            gevent.sleep(max(0.0, next_replay - time.time()))

    def _replay(self, trial: Trial, watch: Watch, replay: Prepared) -> None:
        sent = time.time() - trial.logout_at
        code = self.send(replay, self.nodes[watch.node], " (replay)", ACCEPTED).status
        watch.replays += 1
        if _is_accepted(code):
            watch.accepted_after_logout += 1
            watch.last_accepted_s = sent
        elif ADAPTER.is_rejected(code):
            watch.rejected_after_s = sent
        else:
            watch.errors += 1


class BackgroundReader(read.ReadUser):
    """The read scenario's user, as the load the probes run under.

    It renews its credential shortly before the exp of the JWT it holds (the adapter's
    refresh where it applies, else a new login), as a well-behaved client does, so short
    ACCESS_TTL cells measure reads, not expiries.
    """

    expires: float | None = None
    _is_exp_stale: bool = True  # captured values changed since `expires` was read

    def send(self, request: Prepared, base: str = "", suffix: str = "",
             accept: tuple[int, ...] = (), capture_into: dict[str, str] | None = None
             ) -> Answer:
        answer = super().send(request, base, suffix, accept, capture_into)
        if answer.values:
            self._is_exp_stale = True
        return answer

    def _renew_if_due(self) -> None:
        if self._is_exp_stale:
            self._is_exp_stale = False
            self.expires = _values_exp(self.values)
        if self.expires is not None and time.time() > self.expires - RENEW_MARGIN:
            self.expires = None
            if self.can_refresh():
                self.refresh_tokens()
            else:
                self.login()

    def read_profile(self) -> None:
        self._renew_if_due()
        super().read_profile()

    def write_item(self) -> None:
        self._renew_if_due()
        super().write_item()


def _probe_file() -> dict[str, Any]:
    """The file's body; a trial still watching counts as observed so far."""
    now, trials = time.time(), []
    for trial in TRIALS:
        record = asdict(trial)
        if not trial.is_complete and not trial.observed_s:
            record["observed_s"] = max(0.0, now - trial.logout_at)
        trials.append(record)
    return {"format": FILE_FORMAT, "host": socket.gethostname(), "pid": os.getpid(),
            "trials": trials}


def _attach(_window: control.Window) -> tuple[str, dict[str, Any]] | None:
    """A worker with no run folder on its host: its trials so far, with each window's
    histograms, for its master to write (loadtests.gather)."""
    return (KIND, _probe_file()) if TRIALS else None


@events.init.add_listener
def _send_from_elsewhere(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) and \
            os.environ.get("AUTHBENCH_HDR_DIR") is None:
        gather.add_attacher(_attach)


@events.quitting.add_listener
def _save(environment: Environment, **_: Any) -> None:
    folder = os.environ.get("AUTHBENCH_HDR_DIR")
    if folder is None or isinstance(environment.runner, MasterRunner) or not TRIALS:
        return
    body = _probe_file()
    target = Path(folder) / f"{KIND}-{socket.gethostname()}-{os.getpid()}.json"
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(body))
    partial.replace(target)
