"""The conformance check's record as load_run's columns, the store settings in words."""

from __future__ import annotations

from analysis.data.conformance import store_settings_text, verify_columns


def test_store_settings_in_words() -> None:
    assert store_settings_text(None) == ""  # mode none, or a run older than the record
    assert store_settings_text({"kind": "postgres", "maxmemory": None,
                                "maxmemory_policy": None}) == "postgres"
    assert store_settings_text({"kind": "redis", "maxmemory": 0,
                                "maxmemory_policy": "noeviction", "can_evict": False}) == (
        "redis maxmemory-policy noeviction, no maxmemory (nothing is evicted)")
    assert store_settings_text({"kind": "redis", "maxmemory": 1 << 20,
                                "maxmemory_policy": "volatile-lru", "can_evict": True,
                                "eviction_allowed": False}) == (
        "redis maxmemory-policy volatile-lru, maxmemory 1,048,576 B (may evict)")


def test_verify_columns_take_the_first_node_s_settings() -> None:
    node = {"is_passed": True, "credential_bytes": 300,
            "checks": [{"name": "revoked after logout", "is_passed": True}],
            "store_settings": {"kind": "memory", "maxmemory_policy": None}}
    columns = verify_columns([node, {**node, "is_passed": False}])
    assert columns == {"verify_passed": False, "revoked_after_logout": True,
                       "credential_bytes": 300, "store_settings": "memory"}
    assert verify_columns([])["store_settings"] == ""
