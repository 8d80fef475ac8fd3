"""Only GET /noauth: the load generator's own ceiling, to compare with wrk.

By hand:  locust -f loadtests/floor.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

from locust import FastHttpUser, task

from loadtests import hdr  # noqa: F401
from loadtests.arrivals import next_turn
from loadtests.control import Readiness


class FloorUser(FastHttpUser):
    """Hammers the unauthenticated twin of /api/me."""

    def on_start(self) -> None:
        Readiness.ready += 1  # nothing to prepare
        next_turn()

    def wait_time(self) -> float:
        next_turn()
        return 0.0

    @task
    def floor(self) -> None:
        self.client.get("/noauth", name="/noauth")
