"""One request over and over, no login: the load generator's own ceiling, to compare
with wrk. GET /noauth by default; AUTHBENCH_PATH names another path, and
AUTHBENCH_TOKEN adds `Authorization: Bearer <token>`, so one token can be driven
exactly as wrk drives it (`wrk -H "Authorization: Bearer <token>"`).

By hand:  locust -f loadtests/floor.py --host http://127.0.0.1:8000
          AUTHBENCH_PATH=/api/me AUTHBENCH_TOKEN=<access token> locust -f loadtests/floor.py ...
"""

from __future__ import annotations

import os

from locust import FastHttpUser, task

from loadtests import hdr  # noqa: F401
from loadtests.arrivals import next_turn
from loadtests.control import Readiness

PATH = os.environ.get("AUTHBENCH_PATH", "/noauth")
TOKEN = os.environ.get("AUTHBENCH_TOKEN", "")
HEADERS = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}


class FloorUser(FastHttpUser):
    """Hammers one path: by default the unauthenticated twin of /api/me."""

    def on_start(self) -> None:
        Readiness.ready += 1  # nothing to prepare
        next_turn()

    def wait_time(self) -> float:
        next_turn()
        return 0.0

    @task
    def floor(self) -> None:
        self.client.get(PATH, headers=HEADERS, name=PATH)
