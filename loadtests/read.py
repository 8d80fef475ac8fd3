"""Steady authenticated reads: log in once, then mostly GET /api/me, some writes.

Where the adapter has a refresh request that applies (the twins' hybrid mode), one task
in 22 rotates the refresh token. Logs out when stopped. A mix whose hot requests carry
no credential (an API's floor) never logs in.

By hand:  locust -f loadtests/read.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

from locust import task

from loadtests import hdr  # noqa: F401  (exact latency histograms when the runner asks)
from loadtests.common import ADAPTER, AuthUser

NEEDS_LOGIN = any(hot.credential for hot in ADAPTER.hot)


class ReadUser(AuthUser):
    """Logged in once; reads /api/me, writes now and then."""

    def prepare(self) -> None:
        if NEEDS_LOGIN:
            self.login()

    @task(20)
    def read(self) -> None:
        self.read_profile()

    @task(1)
    def write(self) -> None:
        self.write_item()

    @task(1)
    def refresh(self) -> None:
        if self.can_refresh():
            self.refresh_tokens()
        else:
            self.read_profile()  # keeps the mix the same size in every mode

    def on_stop(self) -> None:
        self.logout()
