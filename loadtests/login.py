"""Login storm: every task is a fresh login (the KDF and the credential issue).

By hand:  locust -f loadtests/login.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

from locust import task

from loadtests import hdr  # noqa: F401
from loadtests.common import AuthUser


class LoginUser(AuthUser):
    """Logs in over and over; each login replaces the previous credential."""

    @task
    def login_again(self) -> None:
        self.login()
