"""Steady authenticated reads: log in once, then mostly GET /api/me, some writes.

The same task mix drives every auth mode; the user asks /health which mode the
target runs and carries its credential the way that mode wants (cookie + CSRF
token for sessions, Bearer header for JWT, Bearer + refresh cookie for hybrid).

Run by hand:  locust -f loadtests/read.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import random
from typing import Any

from locust import FastHttpUser, constant, task

SEED_USERS = 1000


def seed_password(username: str) -> str:
    """The targets' documented password scheme (see targets/passwords.py)."""
    return f"pw-{username}"


class AuthUser(FastHttpUser):
    """One logged-in client of whichever mode the target runs."""

    wait_time = constant(0)
    headers: dict[str, str]
    mode: str

    def on_start(self) -> None:
        with self.client.get("/health", name="/health", catch_response=True) as answer:
            self.mode = answer.json()["auth_mode"] if answer.ok else "none"
        self.login()

    def login(self) -> None:
        self.headers = {}
        username = f"user{random.randrange(SEED_USERS)}"
        body = {"username": username, "password": seed_password(username)}
        with self.client.post(
            "/auth/login", json=body, name="/auth/login", catch_response=True
        ) as answer:
            if not answer.ok:
                answer.failure(f"login failed: HTTP {answer.status_code}")
                return
            self.remember(answer.json())

    def remember(self, credential: dict[str, Any]) -> None:
        if "access_token" in credential:
            self.headers["Authorization"] = f"Bearer {credential['access_token']}"
        if "csrf_token" in credential:
            self.headers["X-CSRF-Token"] = credential["csrf_token"]

    @task(20)
    def read_profile(self) -> None:
        self.client.get("/api/me", headers=self.headers, name="/api/me")

    @task(1)
    def write_item(self) -> None:
        self.client.post(
            "/api/items", json={"name": "note", "size": 1}, headers=self.headers,
            name="/api/items",
        )

    @task(1)
    def refresh(self) -> None:
        if self.mode != "hybrid":
            return
        with self.client.post(
            "/auth/refresh", headers=self.headers, name="/auth/refresh", catch_response=True
        ) as answer:
            if answer.ok:
                self.remember(answer.json())
            else:
                answer.failure(f"refresh failed: HTTP {answer.status_code}")

    def on_stop(self) -> None:
        self.client.post("/auth/logout", headers=self.headers, name="/auth/logout")
