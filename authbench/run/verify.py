"""Verify before measuring: a target that fails these checks is not benchmarked.

401 without a credential, 200 with one, bad credentials rejected, and 401 after
logout wherever the mode can revoke (TechEmpower's rule: a wrong implementation's
numbers mean nothing).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

VERIFY_USER = "user1"
TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    is_passed: bool
    detail: str


@dataclass
class VerifyResult:
    """All checks of one target; is_passed only if every check passed."""

    url: str
    mode: str = "unknown"
    checks: list[Check] = field(default_factory=list)
    credential_bytes: int | None = None  # bytes of the credential header(s) per request
    # What /health says of the store the target checked at start (eviction policy, and
    # whether STORE_ALLOW_EVICTION let it run on one that may evict); None without a store.
    store_settings: dict[str, Any] | None = None

    @property
    def is_passed(self) -> bool:
        return bool(self.checks) and all(c.is_passed for c in self.checks)

    @property
    def reason(self) -> str:
        failed = [f"{c.name}: {c.detail}" for c in self.checks if not c.is_passed]
        return "; ".join(failed) if failed else ""

    def expect(self, name: str, condition: bool, detail: str) -> bool:
        self.checks.append(Check(name, condition, detail))
        return condition

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "mode": self.mode, "is_passed": self.is_passed,
                "reason": self.reason, "checks": [asdict(c) for c in self.checks],
                "credential_bytes": self.credential_bytes,
                "store_settings": self.store_settings}

    def lines(self) -> list[str]:
        """A readable report, one line per check."""
        out = [f"{self.url} ({self.mode}): {'PASSED' if self.is_passed else 'FAILED'}"]
        out += [f"  [{'ok' if c.is_passed else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        return out


def _unsigned_token() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'at+jwt'})}.{part({'sub': VERIFY_USER})}."


def _credential(mode: str, login: httpx.Response) -> tuple[dict[str, str], str | None]:
    body = login.json()
    headers: dict[str, str] = {}
    if "access_token" in body:
        headers["Authorization"] = f"Bearer {body['access_token']}"
    if mode == "session" and "sid" in login.cookies:
        headers["Cookie"] = f"sid={login.cookies['sid']}"
    return headers, body.get("csrf_token")


def verify_target(url: str) -> VerifyResult:
    """Run the conformance checks against one target; never raises for a bad target."""
    result = VerifyResult(url)
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT, verify=False) as client:  # noqa: S501
            _run_checks(client, result)
    except httpx.HTTPError as exc:
        result.expect("reachable", False, f"{type(exc).__name__}: {exc}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # Not JSON, or JSON of the wrong shape: a broken target, not a crash of the check.
        result.expect("well-formed answers", False, f"{type(exc).__name__}: {exc}")
    return result


def _run_checks(client: httpx.Client, result: VerifyResult) -> None:
    health = client.get("/health")
    if not result.expect("health", health.status_code == 200, f"HTTP {health.status_code}"):
        return
    info = health.json()
    mode, revocation = info.get("auth_mode", "unknown"), info.get("jwt_revocation", "none")
    result.mode = mode
    result.store_settings = info.get("store_settings")
    anonymous = client.get("/api/me")
    expected = 200 if mode == "none" else 401
    result.expect("no credential", anonymous.status_code == expected,
                  f"HTTP {anonymous.status_code}, expected {expected}")
    login = client.post("/auth/login",
                        json={"username": VERIFY_USER, "password": f"pw-{VERIFY_USER}"})
    if not result.expect("login", login.status_code == 200, f"HTTP {login.status_code}"):
        return
    headers, csrf = _credential(mode, login)
    # What each authenticated request carries on the wire: "Name: value\r\n" per header.
    result.credential_bytes = sum(len(f"{k}: {v}\r\n") for k, v in headers.items())
    client.cookies.clear()
    me = client.get("/api/me", headers=headers)
    user = me.json().get("user") if me.status_code == 200 else None
    expected_user = "user0" if mode == "none" else VERIFY_USER  # /noauth's body is user0's
    result.expect("with credential", me.status_code == 200 and user == expected_user,
                  f"HTTP {me.status_code}, user {user!r}, expected {expected_user!r}")
    if mode == "none":
        return
    wrong = client.post("/auth/login", json={"username": VERIFY_USER, "password": "wrong"})
    result.expect("wrong password", wrong.status_code == 401, f"HTTP {wrong.status_code}")
    if mode == "session":
        forged = client.get("/api/me", headers={"Cookie": "sid=" + "A" * 43})
        result.expect("unknown session id", forged.status_code == 401,
                      f"HTTP {forged.status_code}")
    else:
        forged = client.get("/api/me", headers={"Authorization": f"Bearer {_unsigned_token()}"})
        result.expect("alg none token", forged.status_code == 401, f"HTTP {forged.status_code}")
        bearer = headers.get("Authorization", "")
        if result.expect("access token issued", bool(bearer),
                         "in the login answer" if bearer else "no access_token at login"):
            tampered = bearer[:-4] + ("AAAA" if not bearer.endswith("AAAA") else "BBBB")
            bad = client.get("/api/me", headers={"Authorization": tampered})
            result.expect("bad signature", bad.status_code == 401, f"HTTP {bad.status_code}")
    logout_headers = {**headers, **({"X-CSRF-Token": csrf} if csrf else {})}
    out = client.post("/auth/logout", headers=logout_headers)
    result.expect("logout", out.status_code == 200, f"HTTP {out.status_code}")
    after = client.get("/api/me", headers=headers)
    can_revoke = mode == "session" or revocation in ("blocklist", "pubsub")
    if can_revoke:
        result.expect("revoked after logout", after.status_code == 401,
                      f"HTTP {after.status_code}, expected 401")
    else:
        result.expect("valid until exp (no revocation configured)", after.status_code == 200,
                      f"HTTP {after.status_code}, expected 200")
