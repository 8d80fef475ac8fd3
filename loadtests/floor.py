"""Only GET /noauth: the load generator's own ceiling, to compare with wrk.

By hand:  locust -f loadtests/floor.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

from locust import FastHttpUser, constant, task

from loadtests import hdr  # noqa: F401
from loadtests.common import Readiness


class FloorUser(FastHttpUser):
    """Hammers the unauthenticated twin of /api/me."""

    wait_time = constant(0)

    def on_start(self) -> None:
        Readiness.ready += 1  # nothing to prepare

    @task
    def floor(self) -> None:
        self.client.get("/noauth", name="/noauth")
