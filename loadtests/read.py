"""Steady authenticated reads: log in once, then mostly GET /api/me, some writes.

In hybrid mode one task in 22 rotates the refresh token. Logs out when stopped.

By hand:  locust -f loadtests/read.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

from locust import task

from loadtests import hdr  # noqa: F401  (exact latency histograms when the runner asks)
from loadtests.common import AuthUser


class ReadUser(AuthUser):
    """Logged in once; reads /api/me, writes now and then."""

    def prepare(self) -> None:
        self.login()

    @task(20)
    def read(self) -> None:
        self.read_profile()

    @task(1)
    def write(self) -> None:
        self.write_item()

    @task(1)
    def refresh(self) -> None:
        if self.mode == "hybrid":
            self.refresh_tokens()
        else:
            self.read_profile()  # keeps the mix the same size in every mode

    def on_stop(self) -> None:
        self.logout()
