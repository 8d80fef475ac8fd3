"""Errors the auth step raises; the app turns each into one HTTP status."""

from __future__ import annotations


class Unauthorized(Exception):
    """No valid credential: 401. is_missing: none was sent at all (RFC 6750 3.1)."""

    def __init__(self, detail: str, is_missing: bool = False) -> None:
        super().__init__(detail)
        self.is_missing = is_missing


class Forbidden(Exception):
    """A valid credential without the CSRF token the write needs: 403."""


class BadRequest(Exception):
    """A malformed or oversized request: 400 or 413."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.status = status


class NotAvailable(Exception):
    """The endpoint does not exist in this auth mode: 404."""
