"""What every scenario shares: how a user logs in and carries its credential.

The user asks /health which mode the target runs, then carries the credential the
way that mode wants: cookie + CSRF token for sessions, a Bearer header for JWT,
Bearer + refresh cookie + CSRF token for hybrid. Users are user0..user<N-1> with
password pw-user<K> (targets/passwords.py).

AUTHBENCH_NODES (comma-separated base URLs) spreads users over several nodes from
the client side when no load balancer is in front (user i talks to node i mod N).
"""

from __future__ import annotations

import itertools
import os
import random
from typing import Any

from locust import FastHttpUser

from loadtests.arrivals import next_turn
from loadtests.control import Readiness

SEED_USERS = int(os.environ.get("AUTHBENCH_SEED_USERS", "1000"))
# The last PROBE_USERS seeded users are kept for loadtests/revocation.py's probes, so a
# probe logging out everywhere never logs a load user out.
PROBE_USERS = 8
_NODES = [url for url in os.environ.get("AUTHBENCH_NODES", "").split(",") if url]
_next_node = itertools.count()


def seed_password(username: str) -> str:
    """The targets' documented password scheme."""
    return f"pw-{username}"


class AuthUser(FastHttpUser):
    """A client of whichever mode the target runs; scenarios add the tasks."""

    abstract = True
    headers: dict[str, str]
    mode: str = "none"
    is_logged_in: bool = False

    def on_start(self) -> None:
        if _NODES:
            self.client.base_url = _NODES[next(_next_node) % len(_NODES)]
        with self.client.get("/health", name="/health", catch_response=True) as answer:
            if answer.ok:
                self.mode = answer.json()["auth_mode"]
            else:
                answer.failure(f"/health answered {answer.status_code}")
        self.headers = {}
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

    def login(self) -> bool:
        """Log in as a random seeded user; remember the credential."""
        self.headers = {}  # the login answer replaces the credential cookies it sets
        username = f"user{random.randrange(max(1, SEED_USERS - PROBE_USERS))}"
        body = {"username": username, "password": seed_password(username)}
        with self.client.post(
            "/auth/login", json=body, name="/auth/login", catch_response=True
        ) as answer:
            if not answer.ok:
                answer.failure(f"login failed: HTTP {answer.status_code}")
                self.is_logged_in = False
                return False
            self.remember(answer.json())
        self.is_logged_in = True
        return True

    def remember(self, credential: dict[str, Any]) -> None:
        """Keep the access token and CSRF token of a login or refresh answer."""
        if "access_token" in credential:
            self.headers["Authorization"] = f"Bearer {credential['access_token']}"
        if "csrf_token" in credential:
            self.headers["X-CSRF-Token"] = credential["csrf_token"]

    def read_profile(self) -> None:
        self.client.get("/api/me", headers=self.headers, name="/api/me")

    def write_item(self) -> None:
        self.client.post("/api/items", json={"name": "note", "size": 1},
                         headers=self.headers, name="/api/items")

    def refresh_tokens(self) -> None:
        """Rotate the refresh token (hybrid only) and take the new access token."""
        with self.client.post(
            "/auth/refresh", headers=self.headers, name="/auth/refresh", catch_response=True
        ) as answer:
            if answer.ok:
                self.remember(answer.json())
            else:
                answer.failure(f"refresh failed: HTTP {answer.status_code}")

    def logout(self) -> None:
        if self.is_logged_in:
            self.client.post("/auth/logout", headers=self.headers, name="/auth/logout")
            self.is_logged_in = False
