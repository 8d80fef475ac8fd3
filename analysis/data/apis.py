"""An API of the user's (authbench run --api) in the tidy frame: its requests under the
names the report reads, and the costs it may claim.

The report reads the hot path, the floor, login and refresh by the twins' names
(analysis.data.endpoints). An API's own requests stand in for them as the run's metadata
says (its adapter's hot request and floor for GET /api/me, its login for POST
/auth/login, ...); `api_endpoint` keeps what the API calls them. Its server CPU is
claimed only where the adapter named the service's processes.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analysis.data.endpoints import LOGIN, ME, REFRESH

ROLES = {"hot": ME, "floor": ME, "login": LOGIN, "refresh": REFRESH}
COST_COLUMNS = ("cpu_ms_per_request", "target_cpu_us", "server_cpu_us", "target_util",
                "target_core_busy")


def report_names(metadata: dict[str, Any]) -> dict[str, str]:
    """The API's request names ("GET /me") by the name the report reads ("GET /api/me")."""
    endpoints = (metadata.get("api") or {}).get("endpoints") or {}
    names: dict[str, str] = {}
    for role, canonical in ROLES.items():
        if role in endpoints:
            names[str(endpoints[role])] = canonical
    return names


def name_api_endpoints(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """`endpoint` as the report reads it, `api_endpoint` as the API calls it ('' for the
    twins); an API's cells without claimed CPU lose their cost figures."""
    frame = frame.copy()
    names = report_names(metadata)
    frame["api_endpoint"] = ""
    if not names or frame.empty:
        return frame
    frame["api_endpoint"] = frame["endpoint"]
    frame["endpoint"] = frame["endpoint"].map(lambda name: names.get(name, name))
    if "cpu_claimed" in frame:
        unclaimed = ~frame["cpu_claimed"].fillna(True).astype(bool)
        for column in COST_COLUMNS:
            if column in frame:
                frame.loc[unclaimed, column] = math.nan
        frame.loc[unclaimed, "bottleneck"] = "unknown"
    return frame


def api_facts(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """What the run's metadata says of the API it drove, or None for the twins."""
    api = metadata.get("api")
    return api if isinstance(api, dict) else None
