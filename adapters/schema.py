"""What an adapter file holds, checked: types, choices, bounds, no unknown keys.

Every string an endpoint sends (path, header, cookie, body) may hold `{name}` fields:
`{username}` and `{password}` at login, then any value captured at login by that name.
authbench/adapters.loading reads the TOML, merges a variant over the top level and turns
a validation error into one line that names the file and the key.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
KINDS = ("session", "jwt", "hybrid", "none")  # what a variant is, in the article's terms
STORES = ("memory", "redis", "postgres", "other")
CAPTURE = re.compile(r"^(json:(/[^/]*)*|cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+|header:[A-Za-z0-9-]+)$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGKILL")


def _path(value: str) -> str:
    if not value.startswith("/") or value.startswith("//"):
        raise ValueError("must be a path on the API's own host, starting with one /")
    return value


def _capture(value: str) -> str:
    if not CAPTURE.match(value):
        raise ValueError('expected "json:/pointer", "cookie:NAME" or "header:NAME"')
    return value


def _names(values: dict[str, str]) -> dict[str, str]:
    for name in values:
        if not NAME.match(name):
            raise ValueError(f"{name!r} is not a name (letters, digits and _)")
    return values


Path_ = Annotated[str, AfterValidator(_path)]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class _Strict(BaseModel):
    """Types as given (no "1" for 1), no unknown keys, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Request(_Strict):
    """One request the API answers: where, how, and what it carries beyond the credential."""

    path: Path_
    method: Method = "GET"
    json_body: Any = Field(None, alias="json")  # a JSON body (strings may hold {fields})
    form: dict[str, str] | None = None  # a form-encoded body
    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)
    # Only when this capture is present (e.g. a refresh token only some variants give).
    when: str = ""
    # Send the [send] headers and cookies (false: an anonymous request, e.g. the floor).
    credential: bool = True

    @model_validator(mode="after")
    def _one_body(self) -> Request:
        if self.json_body is not None and self.form is not None:
            raise ValueError("give json or form, not both")
        return self


class Hot(Request):
    """An authenticated request of the load mix; weights share the mix."""

    weight: Annotated[int, Field(ge=1, le=1000)] = 1


class Logout(Request):
    """Ends the credential. `revokes`: the API promises the credential stops working;
    only then does a credential that still works after it fail verification."""

    method: Method = "POST"
    revokes: bool = False


class Refresh(Request):
    """Trades the captured refresh credential for new ones (captured again, by the same
    rules as login); `weight` in the load mix, against the hot requests'."""

    method: Method = "POST"
    weight: Annotated[int, Field(ge=0, le=1000)] = 1


class Login(_Strict):
    """How a user logs in: a body from `{username}` and `{password}`, JSON or a form."""

    path: Path_
    method: Method = "POST"
    format: Literal["json", "form"] = "json"
    body: dict[str, Any] = Field(
        default_factory=lambda: {"username": "{username}", "password": "{password}"})
    headers: dict[str, str] = Field(default_factory=dict)


class User(_Strict):
    username: str
    password: str


class Users(_Strict):
    """Who logs in: `pattern` with `{n}` for 0..count-1 and a `password` template (which
    may use `{username}` and `{n}`), or a `list`, or a `file` of username,password lines."""

    pattern: str = ""
    count: Annotated[int, Field(ge=1, le=10_000_000)] = 1
    password: str = ""
    accounts: list[User] = Field(default_factory=list, alias="list")
    file: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> Users:
        given = [k for k, v in (("pattern", self.pattern), ("list", self.accounts),
                                  ("file", self.file)) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of pattern (with count and password), list "
                             "or file" + (f"; got {', '.join(given)}" if given else ""))
        if self.pattern and ("{n}" not in self.pattern or not self.password):
            raise ValueError('a pattern needs "{n}" in it and a password template')
        return self


class Send(_Strict):
    """How the credential goes back: headers and cookies from the captures on every
    authenticated request, and `csrf` headers on state-changing ones (POST, PUT, PATCH,
    DELETE). An entry whose capture is missing is left out."""

    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)
    csrf: dict[str, str] = Field(default_factory=dict)


class Service(_Strict):
    """The command that starts one node; `{port}` and `{node}` in its arguments and
    environment are each node's own. Without it, `urls` name nodes already running."""

    command: Annotated[list[str], Field(min_length=1)]
    cwd: str = "."  # relative to the adapter file
    env: dict[str, str] = Field(default_factory=dict)
    ready: Path_ = "/"  # answered below 500: the node is up
    url: str = "http://127.0.0.1:{port}"
    stop_signal: Annotated[str, AfterValidator(
        lambda s: s if s in SIGNALS else _bad(f"expected one of {', '.join(SIGNALS)}"))] = \
        "SIGTERM"
    ready_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0


def _bad(message: str) -> str:
    raise ValueError(message)


class Variant(_Strict):
    """One configuration of the service the run compares: its environment, what it is in
    the article's terms, and any section it overrides (merged before this is built)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_]*$")]
    kind: Literal["session", "jwt", "hybrid", "none"]
    store: Literal["memory", "redis", "postgres", "other"] = "memory"
    env: dict[str, str] = Field(default_factory=dict)


class Adapter(_Strict):
    """An API as authbench drives it, for one variant (the file's top level merged with
    the variant's overrides)."""

    login: Login
    capture: Annotated[dict[str, Annotated[str, AfterValidator(_capture)]],
                       AfterValidator(_names), Field(min_length=1)]
    send: Send
    hot: Annotated[list[Hot], Field(min_length=1)]
    users: Users
    variant: Variant
    name: str = "api"
    service: Service | None = None
    urls: list[str] = Field(default_factory=list)
    nodes: Annotated[int, Field(ge=1, le=64)] = 1
    # An already-running service's processes, whose CPU is its cost.
    pids: list[int] = Field(default_factory=list)
    write: Hot | None = None
    logout: Logout | None = None
    refresh: Refresh | None = None
    logout_all: Logout | None = None
    floor: Request | None = None  # the hot path's work without auth (no credential sent)
    rejected: Annotated[list[int], Field(min_length=1)] = Field(default_factory=lambda: [401, 403])

    @model_validator(mode="after")
    def _target(self) -> Adapter:
        if self.service is not None and self.urls:
            raise ValueError("give [service] (authbench starts it) or urls (already "
                             "running), not both")
        if self.urls and self.nodes not in (1, len(self.urls)):
            raise ValueError(f"nodes = {self.nodes} but {len(self.urls)} urls: one url per "
                             "node")
        bad = [code for code in self.rejected if not 400 <= code <= 499]
        if bad:
            raise ValueError(f"rejected: {bad[0]} is not a 4xx status")
        return self

    @property
    def node_count(self) -> int:
        return len(self.urls) if self.urls else self.nodes

    def is_rejected(self, status: int) -> bool:
        return status in self.rejected
