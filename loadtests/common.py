"""What every scenario shares: how a user logs in and carries its credential, as an
adapter file says (adapters/): the twins' own (adapters/twins.toml) unless the runner
hands over another API's in AUTHBENCH_API (the variant's adapter as JSON).

A user logs in with the adapter's login request, keeps the values it captures (a token
from the JSON body, a cookie, a header) and sends them back as the adapter's [send]
says, explicitly on every request: no cookie jar, so a credential goes only to the node
it was meant for. Users are the adapter's; the last PROBE_USERS of them are kept for
loadtests/revocation.py's probes when there are enough.

AUTHBENCH_NODES (comma-separated base URLs) spreads users over several nodes from
the client side when no load balancer is in front (user i talks to node i mod N).
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

from locust import FastHttpUser

from adapters.exchange import (
    Prepared,
    answer_cookies,
    capture,
    login_request,
    prepare,
    user_at,
    user_count,
)
from adapters.loading import adapter_from_json, twins_adapter
from adapters.schema import Adapter, Request
from loadtests.arrivals import next_turn
from loadtests.control import Readiness


def _adapter() -> Adapter:
    given = os.environ.get("AUTHBENCH_API")
    if given:
        return adapter_from_json(Path(given).read_text())
    twins = twins_adapter()
    seeded = int(os.environ.get("AUTHBENCH_SEED_USERS", str(twins.users.count)))
    return twins.model_copy(update={"users": twins.users.model_copy(update={"count": seeded})})


ADAPTER = _adapter()
USERS = user_count(ADAPTER)
# The last PROBE_USERS users are kept for loadtests/revocation.py's probes, so a probe
# logging out everywhere never logs a load user out (with enough users to spare).
PROBE_USERS = 8
LOAD_USERS = USERS - PROBE_USERS if USERS > 2 * PROBE_USERS else USERS
MODE = os.environ.get("AUTHBENCH_MODE", ADAPTER.variant.kind)
_NODES = [url for url in os.environ.get("AUTHBENCH_NODES", "").split(",") if url]
_next_node = itertools.count()
_HOT_WEIGHTS = [hot.weight for hot in ADAPTER.hot]
# The cookies that carry the credential: sent only as the adapter's [send] says.
CREDENTIAL_COOKIES = {rule.removeprefix("cookie:") for rule in ADAPTER.capture.values()
                      if rule.startswith("cookie:")}


def with_cookies(headers: dict[str, str], jar: dict[str, str]) -> dict[str, str]:
    """headers with the jar's cookies added to their Cookie header (theirs win)."""
    if not jar:
        return headers
    given = headers.get("Cookie", "")
    named = {part.split("=", 1)[0].strip() for part in given.split(";") if "=" in part}
    extra = "; ".join(f"{k}={v}" for k, v in jar.items() if k not in named)
    if not extra:
        return headers
    return {**headers, "Cookie": f"{given}; {extra}" if given else extra}



class Answer:
    """What an answer gave: its status, and the values it carried by the adapter's rules."""

    def __init__(self, status: int, values: dict[str, str]) -> None:
        self.status = status
        self.values = values

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class AuthUser(FastHttpUser):
    """A client of the adapter's API; scenarios add the tasks."""

    abstract = True
    mode: str = MODE
    is_logged_in: bool = False

    def on_start(self) -> None:
        if _NODES:
            self.client.base_url = _NODES[next(_next_node) % len(_NODES)]
        self.client.client.cookiejar = None  # credentials go out explicitly, to one node
        self.values: dict[str, str] = {}
        # Cookies the adapter does not capture (a load balancer's sticky cookie), kept for
        # this user's own node as a browser keeps them; never sent to another base.
        self.jar: dict[str, str] = {}
        self.prepare()
        # The measured phase starts only when every user is ready: with a real password
        # KDF, a login storm must not run inside a measured window.
        Readiness.ready += 1
        next_turn()

    def wait_time(self) -> float:
        """No think time; wait at the gate between windows, for the next arrival under a rate."""
        next_turn()
        return 0.0

    def prepare(self) -> None:
        """What a user does once before its tasks (scenarios override: e.g. log in)."""

    def send(self, request: Prepared, base: str = "", suffix: str = "",
             accept: tuple[int, ...] = (), capture_into: dict[str, str] | None = None
             ) -> Answer:
        """One request to `base` (default: this user's node); a status of 400 or more is a
        failure unless in `accept`. With `capture_into`, the answer's values go there."""
        headers = request.headers if base else with_cookies(request.headers, self.jar)
        with self.client.request(request.method, f"{base}{request.path}",
                                 name=request.name + suffix,
                                 # bytes go out as they are (the stubs say str or dict)
                                 data=request.content,  # type: ignore[arg-type]
                                 headers=headers, catch_response=True) as answer:
            status = int(answer.status_code or 0)
            set_cookies = answer_cookies(list(answer.headers.getlist("set-cookie"))
                                         if answer.headers is not None else [])
            if not base:
                self.jar.update({k: v for k, v in set_cookies.items()
                                 if k not in CREDENTIAL_COOKIES})
            if status in accept:
                answer.success()
            elif status >= 400 or status == 0:
                answer.failure(f"HTTP {status}")
            values: dict[str, str] = {}
            if capture_into is not None and 200 <= status < 300:
                values = capture(ADAPTER.capture, dict(answer.headers or {}), set_cookies,
                                 answer.content or b"")
                capture_into.update(values)
        return Answer(status, values)

    def login_as(self, index: int, base: str = "", suffix: str = "") -> dict[str, str] | None:
        """Log the index-th user in; the captured values, or None (failure recorded)."""
        username, password = user_at(ADAPTER, index)
        values: dict[str, str] = {}
        answer = self.send(login_request(ADAPTER.login, username, password), base, suffix,
                           capture_into=values)
        if not answer.ok or not values:
            return None
        return values

    def login(self) -> bool:
        """Log in as a random load user; remember the credential."""
        self.values = {}
        values = self.login_as(random.randrange(LOAD_USERS))
        self.is_logged_in = values is not None
        if values is not None:
            self.values = values
        return self.is_logged_in

    def do(self, request: Request | None, suffix: str = "") -> Answer | None:
        """An adapter request with this user's values; None when it does not apply."""
        prepared = None if request is None else prepare(request, ADAPTER.send, self.values)
        if prepared is None:
            return None
        return self.send(prepared, suffix=suffix, capture_into=self.values)

    def read_profile(self) -> None:
        """One hot request (the adapter's, by weight)."""
        hot = ADAPTER.hot[0] if len(ADAPTER.hot) == 1 else \
            random.choices(ADAPTER.hot, weights=_HOT_WEIGHTS)[0]
        if self.do(hot) is None:
            self.send(_unapplicable(hot))

    def write_item(self) -> None:
        """The adapter's write, or a hot request where it has none."""
        if self.do(ADAPTER.write) is None:
            self.read_profile()

    def can_refresh(self) -> bool:
        refresh = ADAPTER.refresh
        return refresh is not None and prepare(refresh, ADAPTER.send, self.values) is not None

    def refresh_tokens(self) -> None:
        """Trade the refresh credential for new ones (the answer's values replace the old)."""
        self.do(ADAPTER.refresh)

    def logout(self) -> None:
        if self.is_logged_in:
            self.do(ADAPTER.logout)
            self.is_logged_in = False


def _unapplicable(request: Request) -> Prepared:
    """A hot request whose values were never captured: sent bare, so the failure shows."""
    return Prepared(request.method, request.path, request.path)

