"""Reading request bodies: JSON objects and login forms, every malformed one a 400.

Bodies are capped at MAX_BODY_BYTES (the app's client_max_size): a larger Content-Length is
refused before reading, and aiohttp stops a chunked body at the cap, both with 413.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .auth import AuthError

MAX_BODY_BYTES = 16 * 1024
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
NOT_A_JSON_OBJECT = "send a JSON object (Content-Type: application/json)"
BAD_LOGIN_BODY = "send username and password as JSON or as a form"


def _check_length(request: web.Request) -> None:
    # Without this, a large Content-Length is read up to the cap before the 413.
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or AuthError(400)."""
    _check_length(request)
    if request.content_type != JSON:
        raise AuthError(400, NOT_A_JSON_OBJECT)
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: a body of nested brackets
        raise AuthError(400, NOT_A_JSON_OBJECT) from None
    if not isinstance(body, dict):
        raise AuthError(400, NOT_A_JSON_OBJECT)
    return body


async def read_login_fields(request: web.Request) -> tuple[str, str]:
    """Username and password from a JSON or form body, or AuthError(400)."""
    _check_length(request)
    if request.content_type == FORM:
        try:
            form = await request.post()
        except (ValueError, LookupError):  # bytes that are not the charset, or no such charset
            raise AuthError(400, BAD_LOGIN_BODY) from None
        username, password = form.get("username"), form.get("password")
    elif request.content_type == JSON:
        body = await read_json_object(request)
        username, password = body.get("username"), body.get("password")
    else:
        raise AuthError(400, BAD_LOGIN_BODY)
    if not isinstance(username, str) or not isinstance(password, str):
        raise AuthError(400, BAD_LOGIN_BODY)
    return username, password


def string_field(body: dict[str, Any], name: str) -> str | None:
    """body[name] when it is a string, else None."""
    value = body.get(name)
    return value if isinstance(value, str) else None
