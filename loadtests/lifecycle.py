"""Session lifecycle: log in, make K authenticated requests, log out, again.

AUTHBENCH_REQUESTS_PER_SESSION sets K (default 10).

By hand:  locust -f loadtests/lifecycle.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import os

from locust import task

from loadtests import hdr  # noqa: F401
from loadtests.common import AuthUser

REQUESTS_PER_SESSION = int(os.environ.get("AUTHBENCH_REQUESTS_PER_SESSION", "10"))


class LifecycleUser(AuthUser):
    """One whole session per task: login, K reads, logout."""

    @task
    def one_session(self) -> None:
        if not self.login():
            return
        for _ in range(REQUESTS_PER_SESSION):
            self.read_profile()
        self.logout()
