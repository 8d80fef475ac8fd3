"""The requests an adapter implies, and what its answers yield: pure, no I/O.

Locust's users (loadtests/) and the harness's verification (authbench/run) both build
their requests here, so the API is driven one way whatever drives it. A request is
relative to one node: its credential goes to that node and nowhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from adapters.schema import SAFE_METHODS, Adapter, Login, Request, Send

# One pass over a template: an escaped brace, or a field (so a value is never re-read).
TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingValue(KeyError):
    """A template names a value that was not captured (or is not known at login)."""


def render(template: str, values: Mapping[str, str]) -> str:
    """`{name}` fields replaced by values; `{{` and `}}` stand for braces."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]  # "{{" -> "{", "}}" -> "}"
        if name not in values:
            raise MissingValue(name)
        return values[name]

    return TOKEN.sub(one, template)


def render_data(data: Any, values: Mapping[str, str]) -> Any:
    """Every string inside a JSON value rendered; other values as they are."""
    if isinstance(data, str):
        return render(data, values)
    if isinstance(data, Mapping):
        return {key: render_data(value, values) for key, value in data.items()}
    if isinstance(data, list):
        return [render_data(item, values) for item in data]
    return data


def _rendered_entries(entries: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    """The entries whose fields are all known; the others are left out."""
    out = {}
    for name, template in entries.items():
        try:
            out[name] = render(template, values)
        except MissingValue:
            continue
    return out


@dataclass(frozen=True)
class Prepared:
    """A request ready to send to one node: path relative to it, headers (cookies among
    them, never in a jar), and a body."""

    method: str
    path: str
    name: str  # how statistics group it, after the method: "/me" (the path template)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    form: dict[str, str] | None = None

    @property
    def content(self) -> bytes | None:
        """The body as bytes, with its content type set in headers by `prepare`."""
        if self.json is not None:
            return json.dumps(self.json, separators=(",", ":")).encode()
        if self.form is not None:
            return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                            for k, v in self.form.items()).encode()
        return None


def credential_headers(send: Send, method: str, values: Mapping[str, str]) -> dict[str, str]:
    """The headers that carry the credential on a request of `method`."""
    headers = _rendered_entries(send.headers, values)
    if method not in SAFE_METHODS:
        headers.update(_rendered_entries(send.csrf, values))
    cookies = _rendered_entries(send.cookies, values)
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return headers


def prepare(request: Request, send: Send, values: Mapping[str, str],
            with_credential: bool = True) -> Prepared | None:
    """The request with values filled in; None when it does not apply (its `when` capture,
    or a value its path or body needs, is missing)."""
    if request.when and request.when not in values:
        return None
    try:
        path = render(request.path, values)
        body = render_data(request.json_body, values)
        form = None if request.form is None else {k: render(v, values)
                                                  for k, v in request.form.items()}
    except MissingValue:
        return None
    headers: dict[str, str] = {}
    if with_credential and request.credential:
        headers = credential_headers(send, request.method, values)
    headers.update(_rendered_entries(request.headers, values))
    own_cookies = _rendered_entries(request.cookies, values)
    if own_cookies:
        extra = "; ".join(f"{k}={v}" for k, v in own_cookies.items())
        headers["Cookie"] = f"{headers['Cookie']}; {extra}" if "Cookie" in headers else extra
    _content_type(headers, body, form)
    return Prepared(request.method, path, request.path, headers, body, form)


def _content_type(headers: dict[str, str], body: Any, form: Mapping[str, str] | None) -> None:
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")


def login_request(login: Login, username: str, password: str) -> Prepared:
    """The login request of one user."""
    values = {"username": username, "password": password}
    body = render_data(login.body, values)
    headers = _rendered_entries(login.headers, values)
    if login.format == "json":
        _content_type(headers, body, None)
        return Prepared(login.method, login.path, login.path, headers,
                        json=body)
    form = {str(k): str(v) for k, v in body.items()}
    _content_type(headers, None, form)
    return Prepared(login.method, login.path, login.path, headers,
                    form=form)


def json_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901: the value at `pointer` ("" is the whole document); KeyError if absent."""
    if pointer == "":
        return document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(document, list):
            if not token.isdigit() or int(token) >= len(document):
                raise KeyError(pointer)
            document = document[int(token)]
        elif isinstance(document, Mapping) and token in document:
            document = document[token]
        else:
            raise KeyError(pointer)
    return document


def capture(rules: Mapping[str, str], headers: Mapping[str, str],
            cookies: Mapping[str, str], body: bytes) -> dict[str, str]:
    """The values an answer carries, by name; absent ones are left out. `headers` are
    looked up case-blind; `cookies` are those the answer set."""
    lowered = {k.lower(): v for k, v in headers.items()}
    document: Any = None
    found: dict[str, str] = {}
    for name, rule in rules.items():
        source, _, where = rule.partition(":")
        if source == "json":
            if document is None:
                try:
                    document = json.loads(body) if body else {}
                except ValueError:
                    document = {}
            try:
                value = json_pointer(document, where)
            except KeyError:
                continue
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                found[name] = str(value)
        elif source == "cookie" and where in cookies and cookies[where]:
            found[name] = cookies[where]
        elif source == "header" and where.lower() in lowered:
            found[name] = lowered[where.lower()]
    return found


def user_at(adapter: Adapter, index: int) -> tuple[str, str]:
    """The index-th user's name and password (indexes wrap around the users)."""
    users = adapter.users
    if users.accounts:
        account = users.accounts[index % len(users.accounts)]
        return account.username, account.password
    n = str(index % users.count)
    username = render(users.pattern, {"n": n})
    return username, render(users.password, {"n": n, "username": username})


def user_count(adapter: Adapter) -> int:
    users = adapter.users
    return len(users.accounts) if users.accounts else users.count


def credential_bytes(adapter: Adapter, values: Mapping[str, str], method: str = "GET") -> int:
    """Bytes of the credential on the wire per request: "Name: value\\r\\n" per header."""
    return sum(len(f"{k}: {v}\r\n")
               for k, v in credential_headers(adapter.send, method, values).items())


def answer_cookies(set_cookie: list[str]) -> dict[str, str]:
    """The cookies a response's Set-Cookie headers set (a cookie being deleted, with an
    empty value, is left out)."""
    found: dict[str, str] = {}
    for line in set_cookie:
        pair = line.split(";", 1)[0]
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip().strip('"')
        if sep and name and value:
            found[name] = value
    return found
