"""The cost of being able to revoke, against JWT without revocation at the same load."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from analysis.revocation_cost import overhead_table


def test_overhead_is_relative_to_jwt_without_revocation_on_the_same_load() -> None:
    def row(mode: str, revocation: str, store: str, cost: float, rps: float,
            users: int = 20) -> dict[str, Any]:
        return {"status": "ok", "endpoint": "GET /api/me", "scenario": "read", "users": users,
                "nodes": 1, "mode": mode, "revocation": revocation, "store": store,
                "server_cpu_us": cost, "auth_cpu_mean_us": cost / 10, "auth_p50_ms": 0.05,
                "rps": rps, "p99_ms": 5.0}

    frame = pd.DataFrame([row("none", "none", "memory", 80.0, 1300.0),
                          row("jwt", "none", "memory", 100.0, 1000.0),
                          row("jwt", "none", "memory", 110.0, 1000.0),  # median 105
                          row("jwt", "blocklist", "redis", 305.0, 800.0),
                          row("jwt", "pubsub", "redis", 115.0, 980.0),
                          row("jwt", "blocklist", "redis", 500.0, 500.0, users=50)])
    table = overhead_table(frame)
    at_20 = table[table["users"] == 20].set_index("strategy")
    # Cost is CPU per request (target + store), the median over repeats.
    assert at_20.loc["JWT + blocklist in redis", "cost_us"] == pytest.approx(305.0)
    assert at_20.loc["JWT + blocklist in redis", "extra_us"] == pytest.approx(200.0)
    assert at_20.loc["JWT + blocklist in redis", "auth_cpu_us"] == pytest.approx(30.5)
    assert at_20.loc["JWT + blocklist in redis", "auth_p50_us"] == pytest.approx(50.0)
    assert at_20.loc["JWT + blocklist in redis", "rps_ratio"] == pytest.approx(0.8)
    assert at_20.loc["JWT, no blocklist", "extra_us"] == pytest.approx(0.0)
    assert at_20.loc["JWT + blocklist in node memory via Redis pub/sub", "extra_us"] == \
        pytest.approx(10.0)
    assert "none" not in at_20.index  # no credential: nothing to revoke
    # 50 users have no JWT without revocation to compare with: no extra is made up.
    alone = table[table["users"] == 50].iloc[0]
    assert alone["cost_us"] == pytest.approx(500.0) and math.isnan(alone["extra_us"])
