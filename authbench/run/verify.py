"""Verify before measuring: a target that fails these checks is not benchmarked.

Any API, through its adapter (verify_api): rejected without a credential, a credential
at login, accepted with it, refused for a wrong password or a tampered credential. What
logout does is measured, not assumed: only where the adapter declares that logout
revokes does a credential that still works after it fail. The twins (verify_target) add
their own checks: /health, the user a credential names, a token with alg "none"
(TechEmpower's rule: a wrong implementation's numbers mean nothing).
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from adapters.exchange import (
    Prepared,
    answer_cookies,
    capture,
    credential_bytes,
    login_request,
    prepare,
    user_at,
)
from adapters.loading import twins_adapter
from adapters.schema import Adapter

VERIFY_USER = 1  # the twins' user1 (user0 is the floor's)
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
    revoked_after_logout: bool | None = None  # measured: None when there is no logout

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
                "store_settings": self.store_settings,
                "revoked_after_logout": self.revoked_after_logout}

    def lines(self) -> list[str]:
        """A readable report, one line per check."""
        out = [f"{self.url} ({self.mode}): {'PASSED' if self.is_passed else 'FAILED'}"]
        out += [f"  [{'ok' if c.is_passed else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        return out


def _unsigned_token(username: str) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'at+jwt'})}.{part({'sub': username})}."


def _send(client: httpx.Client, request: Prepared) -> tuple[httpx.Response, dict[str, str]]:
    """The answer, and the cookies it set (the client keeps none)."""
    answer = client.request(request.method, request.path, headers=request.headers,
                            content=request.content)
    client.cookies.clear()
    return answer, answer_cookies(answer.headers.get_list("set-cookie"))


def _tampered(value: str) -> str:
    return value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")


def verify_api(adapter: Adapter, url: str, revokes: bool | None = None,
               result: VerifyResult | None = None) -> VerifyResult:
    """The adapter's checks against one node; never raises for a bad API. `revokes`
    overrides the adapter's logout.revokes (the twins know it from the mode)."""
    result = result or VerifyResult(url, adapter.variant.kind)
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT, verify=False) as client:  # noqa: S501
            _api_checks(client, adapter, result, revokes)
    except httpx.HTTPError as exc:
        result.expect("reachable", False, f"{type(exc).__name__}: {exc}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # Not JSON, or JSON of the wrong shape: a broken target, not a crash of the check.
        result.expect("well-formed answers", False, f"{type(exc).__name__}: {exc}")
    return result


def _api_checks(client: httpx.Client, adapter: Adapter, result: VerifyResult,
                revokes: bool | None) -> None:
    rejected = ", ".join(map(str, adapter.rejected))
    hot = adapter.hot[0]
    if not hot.credential:  # the floor: an anonymous request that must simply work
        answer, _ = _send(client, _must(prepare(hot, adapter.send, {})))
        result.expect("without credential", answer.is_success, f"HTTP {answer.status_code}")
        return
    bare = _must(prepare(hot, adapter.send, {}, with_credential=False))
    anonymous, _ = _send(client, bare)
    result.expect("no credential", adapter.is_rejected(anonymous.status_code),
                  f"{bare.method} {bare.path}: HTTP {anonymous.status_code}, "
                  f"expected one of {rejected}")
    username, password = user_at(adapter, VERIFY_USER)
    login, cookies = _send(client, login_request(adapter.login, username, password))
    values = capture(adapter.capture, login.headers, cookies, login.content)
    if not result.expect("login", login.is_success and bool(values),
                         f"HTTP {login.status_code}" + (
                             f", captured {', '.join(sorted(values))}" if values else
                             f", none of {', '.join(adapter.capture)} in the answer")):
        return
    result.credential_bytes = credential_bytes(adapter, values)
    with_credential = prepare(hot, adapter.send, values)
    if not result.expect("credential sent", with_credential is not None
                         and bool(with_credential.headers),
                         "the [send] headers and cookies use no captured value"
                         if with_credential is None or not with_credential.headers
                         else ", ".join(sorted(with_credential.headers))):
        return
    assert with_credential is not None
    me, _ = _send(client, with_credential)
    if adapter.name == "twins":  # the twins' answer names the user the credential is for
        user = me.json().get("user") if me.is_success else None
        result.expect("with credential", me.is_success and user == username,
                      f"HTTP {me.status_code}, user {user!r}, expected {username!r}")
    else:
        result.expect("with credential", me.is_success, f"HTTP {me.status_code}")
    wrong, wrong_cookies = _send(client, login_request(adapter.login, username,
                                                       password + "-wrong"))
    leaked = capture(adapter.capture, wrong.headers, wrong_cookies, wrong.content)
    result.expect("wrong password", not wrong.is_success and not leaked,
                  f"HTTP {wrong.status_code}" + (" with a credential" if leaked else ""))
    used = [name for name in values
            if prepare(hot, adapter.send, {k: v for k, v in values.items() if k != name})
            != with_credential]
    for name in used:  # each value the hot request carries, altered alone
        forged = _must(prepare(hot, adapter.send, {**values, name: _tampered(values[name])}))
        bad, _ = _send(client, forged)
        result.expect(f"tampered {name}", adapter.is_rejected(bad.status_code),
                      f"HTTP {bad.status_code}, expected one of {rejected}")
    _logout_checks(client, adapter, result, values, with_credential,
                   adapter.logout is not None and adapter.logout.revokes
                   if revokes is None else revokes)


def _logout_checks(client: httpx.Client, adapter: Adapter, result: VerifyResult,
                   values: dict[str, str], hot: Prepared, revokes: bool) -> None:
    """Log out, then try the old credential: measured, and failed only if promised."""
    if adapter.logout is None:
        return
    request = prepare(adapter.logout, adapter.send, values)
    if request is None:
        result.expect("logout", False, "its path or body needs a value login did not capture")
        return
    out, _ = _send(client, request)
    result.expect("logout", out.is_success, f"HTTP {out.status_code}")
    after, _ = _send(client, hot)
    result.revoked_after_logout = adapter.is_rejected(after.status_code)
    if revokes:
        result.expect("revoked after logout", result.revoked_after_logout,
                      f"HTTP {after.status_code}, expected one of "
                      f"{', '.join(map(str, adapter.rejected))}")
    else:
        result.expect("valid until exp (no revocation configured)", after.is_success,
                      f"HTTP {after.status_code}, expected 200") if adapter.name == "twins" \
            else result.expect("after logout (not declared to revoke)", True,
                               "rejected" if result.revoked_after_logout
                               else f"still accepted (HTTP {after.status_code})")


def _must(request: Prepared | None) -> Prepared:
    if request is None:
        raise ValueError("the request needs a value that was not captured")
    return request


def verify_target(url: str) -> VerifyResult:
    """The twins' checks against one target: /health, the adapter's checks with what
    the mode says of logout, then an alg-none token; never raises for a bad target."""
    result = VerifyResult(url)
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT, verify=False) as client:  # noqa: S501
            health = client.get("/health")
            if not result.expect("health", health.status_code == 200,
                                 f"HTTP {health.status_code}"):
                return result
            info = health.json()
    except httpx.HTTPError as exc:
        result.expect("reachable", False, f"{type(exc).__name__}: {exc}")
        return result
    except ValueError as exc:
        result.expect("well-formed answers", False, f"{type(exc).__name__}: {exc}")
        return result
    mode, revocation = info.get("auth_mode", "unknown"), info.get("jwt_revocation", "none")
    result.mode = mode
    result.store_settings = info.get("store_settings")
    adapter = twins_adapter()
    if mode == "none":  # every request answers, for user0
        return _none_checks(url, adapter, result)
    verify_api(adapter, url, mode == "session" or revocation in ("blocklist", "pubsub"),
               result)
    if mode != "session":
        username = user_at(adapter, VERIFY_USER)[0]
        try:
            forged = httpx.get(f"{url}/api/me", timeout=TIMEOUT, verify=False,  # noqa: S501
                               headers={"Authorization": f"Bearer {_unsigned_token(username)}"})
            result.expect("alg none token", forged.status_code == 401,
                          f"HTTP {forged.status_code}")
        except httpx.HTTPError as exc:
            result.expect("reachable", False, f"{type(exc).__name__}: {exc}")
    return result


def _none_checks(url: str, adapter: Adapter, result: VerifyResult) -> VerifyResult:
    try:
        me = httpx.get(f"{url}{adapter.hot[0].path}", timeout=TIMEOUT, verify=False)  # noqa: S501
        user = me.json().get("user") if me.status_code == 200 else None
        result.expect("no credential", me.status_code == 200 and user == "user0",
                      f"HTTP {me.status_code}, user {user!r}, expected 'user0'")
    except (httpx.HTTPError, ValueError) as exc:
        result.expect("reachable", False, f"{type(exc).__name__}: {exc}")
    return result
