"""The cost of being able to revoke, against JWT without revocation at the same load: the
answer's figures (closed-loop windows), never pooled with fixed-rate ones."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from analysis.cost.table import cost_table, interval
from analysis.revocation.cost import overhead_lines, overhead_table


def window(key: str, repeat: int, cost: float, *, mode: str = "jwt", revocation: str = "none",
           store: str = "memory", rps: float = 1000.0, users: int = 20,
           rate_spec: str = "") -> dict[str, Any]:
    """One window's GET /api/me row, as analysis.data.load.load_run gives it."""
    name = key if not rate_spec else f"{key}-at50pct"
    return {"cell": f"{repeat:03d}-{name}-r{repeat}", "key": name, "config": key,
            "repeat": repeat, "status": "ok", "endpoint": "GET /api/me", "scenario": "read",
            "users": users, "nodes": 1, "scale": 0, "mode": mode, "revocation": revocation,
            "store": store, "alg": "HS256", "lib": "pyjwt", "server_cpu_us": cost,
            "target_cpu_us": cost, "store_cpu_us": math.nan, "auth_cpu_mean_us": cost / 10,
            "auth_p50_ms": 0.05, "rps": rps, "p50_ms": 1.0, "p99_ms": 5.0,
            "bottleneck": "target", "rate_spec": rate_spec,
            "rate_offered": 650.0 if rate_spec else math.nan,
            "rate_achieved": 650.0 if rate_spec else math.nan,
            "is_generator_short": False, "generator_note": ""}


def windows(key: str, costs: list[float], **fields: Any) -> list[dict[str, Any]]:
    return [window(key, repeat, cost, **fields) for repeat, cost in enumerate(costs, 1)]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame([
        *windows("none-read-u20-n1", [80.0, 82.0], mode="none", rps=1300.0),
        *windows("jwt-memory-HS256-read-u20-n1", [100.0, 110.0]),  # median 105
        *windows("jwt-redis-HS256-blocklist-read-u20-n1", [300.0, 310.0], store="redis",
                 revocation="blocklist", rps=800.0),
        *windows("jwt-redis-HS256-pubsub-read-u20-n1", [112.0, 118.0], store="redis",
                 revocation="pubsub", rps=980.0),
        *windows("jwt-redis-HS256-blocklist-read-u50-n1", [500.0, 500.0], store="redis",
                 revocation="blocklist", rps=500.0, users=50),
        # Fixed-rate windows of the same configurations: far costlier per request (an
        # idle target amortises less), never pooled with the closed loop's.
        *windows("jwt-memory-HS256-read-u20-n1", [400.0, 420.0], rate_spec="50%"),
        *windows("jwt-redis-HS256-blocklist-read-u20-n1", [900.0, 950.0], store="redis",
                 revocation="blocklist", rate_spec="50%"),
    ])


def test_overhead_is_relative_to_jwt_without_revocation_on_the_same_load(
        frame: pd.DataFrame) -> None:
    table = overhead_table(frame)
    at_20 = table[table["users"] == 20].set_index("strategy")
    # Cost is CPU per request (target + store), the median over the closed-loop repeats.
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


def test_each_cost_is_the_answers_for_the_same_configuration(frame: pd.DataFrame) -> None:
    answer = cost_table(frame).set_index("key")
    table = overhead_table(frame).set_index("key")
    for key, row in table.iterrows():
        assert row["cost_us"] == answer.loc[key, "server_cpu_us"]
        assert (row["cost_low"], row["cost_high"]) == (answer.loc[key, "server_cpu_us_low"],
                                                       answer.loc[key, "server_cpu_us_high"])
    lines = overhead_lines(frame)
    heading = next(line for line in lines if line.startswith("| strategy"))
    assert "| cost µs/request (closed loop) |" in heading
    assert "| p99 ms (closed loop) |" not in heading  # the run has a fixed rate: at equal load
    assert "req/s offered (fixed rate) |" in heading
    blocklist = next(line for line in lines if "| jwt-redis-HS256-blocklist-read-u20-n1 |" in line)
    text = interval(answer.loc["jwt-redis-HS256-blocklist-read-u20-n1"], "server_cpu_us").text(1)
    assert f"| {text} | 200.0 |" in blocklist and text == "305.0 (300.0 to 310.0)"


def test_configurations_are_listed_in_the_answers_order(frame: pd.DataFrame) -> None:
    table = overhead_table(frame)
    at_20 = table[table["users"] == 20]
    assert list(at_20["cost_us"]) == sorted(at_20["cost_us"])
    assert list(table["users"]) == sorted(table["users"])  # group by group
