"""What the runner's conformance check recorded of each cell, as load_run's columns."""

from __future__ import annotations

from typing import Any


def verify_columns(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether every node passed, what logout did, the credential's bytes, and the store
    settings the target ran on (in words)."""
    if not checks:
        return {"verify_passed": None, "revoked_after_logout": None, "credential_bytes": None,
                "store_settings": ""}
    names = {c["name"]: c["is_passed"] for c in checks[0]["checks"]}
    revoked: bool | None = checks[0].get("revoked_after_logout")  # measured, where recorded
    if revoked is not None:
        pass
    elif "revoked after logout" in names:
        revoked = bool(names["revoked after logout"])  # False: logout did not revoke
    elif "valid until exp (no revocation configured)" in names:
        revoked = False
    return {
        "verify_passed": all(node["is_passed"] for node in checks),
        "revoked_after_logout": revoked,
        "credential_bytes": checks[0].get("credential_bytes"),
        "store_settings": store_settings_text(checks[0].get("store_settings")),
    }


def store_settings_text(settings: dict[str, Any] | None) -> str:
    """A target's store settings in words: the eviction policy it ran on, and whether
    STORE_ALLOW_EVICTION let it start on a store that may evict ('' without a store)."""
    if not settings:
        return ""
    kind = str(settings.get("kind", "store"))
    policy = settings.get("maxmemory_policy")
    if not policy:
        return kind  # memory and PostgreSQL evict nothing
    limit = settings.get("maxmemory") or 0
    text = f"{kind} maxmemory-policy {policy}, " + (
        f"maxmemory {limit:,} B" if limit else "no maxmemory (nothing is evicted)")
    if settings.get("can_evict"):
        text += (" (may evict: allowed by STORE_ALLOW_EVICTION=1)"
                 if settings.get("eviction_allowed") else " (may evict)")
    return text
