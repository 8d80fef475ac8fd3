"""The request names the analysis picks out of a run: Locust's "METHOD name" per endpoint."""

from __future__ import annotations

ME = "GET /api/me"  # the authenticated hot path, the same in every mode
NOAUTH = "GET /noauth"  # the floor scenario's endpoint: no auth step at all
LOGIN = "POST /auth/login"
REFRESH = "POST /auth/refresh"
# The endpoint a measured window is about, in order of preference.
HOT_PATHS = (ME, NOAUTH)
