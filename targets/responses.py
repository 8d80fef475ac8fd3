"""JSON responses encoded with orjson, and the profile body every mode returns."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An orjson-encoded JSON response."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=JSON)


def profile(user: str) -> dict[str, Any]:
    """The body of GET /api/me (and of /noauth, for user0): identical in every mode."""
    number = user.removeprefix("user")
    return {"user": user, "name": f"User {number}", "roles": ["reader", "writer"]}
