"""Cost per request with its spread: bottlenecks, intervals, the cost table and its order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest

from analysis.cost.table import (
    NOTHING_SATURATED,
    SHARED_CORE,
    Interval,
    answer_order,
    bottleneck,
    comparable_groups,
    cost_order,
    cost_table,
    hot_rows,
    interval,
    limited_text,
    order_lines,
    order_text,
    ordered,
    rps_text,
    sanity_warnings,
)

NAN = math.nan


def test_bottleneck_is_the_most_utilised_component_at_or_above_85_percent() -> None:
    assert bottleneck(0.9, 0.5, NAN) == "target"
    assert bottleneck(0.85, 0.5, NAN) == "target"  # exactly saturated counts
    assert bottleneck(0.5, 0.95, NAN) == "load generator"
    assert bottleneck(0.3, 0.4, 0.9) == "store"
    assert bottleneck(0.9, 0.95, 0.2) == "load generator"  # both saturated: the busier
    assert bottleneck(0.84, 0.6, 0.2) == NOTHING_SATURATED  # the closed loop sets the pace
    assert bottleneck(0.5, NAN, NAN) == NOTHING_SATURATED  # what is known was not saturated
    assert bottleneck(NAN, NAN, NAN) == "unknown"


def test_a_pinned_target_whose_cores_were_full_of_other_work_is_named() -> None:
    # Core busy 97 %, the target's own work 60 % of it (the rest another process's).
    assert bottleneck(0.6, 0.3, NAN, target_core_busy=0.97) == SHARED_CORE
    assert bottleneck(0.4, 0.3, NAN, target_core_busy=0.90) == SHARED_CORE  # the edge counts
    assert bottleneck(0.6, 0.3, NAN, target_core_busy=0.89) == NOTHING_SATURATED  # cores not full
    assert bottleneck(0.6, 0.3, NAN) == NOTHING_SATURATED  # unpinned: no core rule
    # A saturated component is named first, whatever shared the target's cores.
    assert bottleneck(0.9, 0.3, NAN, target_core_busy=0.99) == "target"
    assert bottleneck(0.6, 0.9, NAN, target_core_busy=0.97) == "load generator"


def test_interval_of_repeats_is_median_and_range() -> None:
    four = Interval.of([130.0, 118.0, NAN, 123.0, 125.0])  # NaN repeats are left out
    assert four == Interval(124.0, 118.0, 130.0, 4)
    assert Interval.of([7.0]) == Interval(7.0, 7.0, 7.0, 1)
    empty = Interval.of([])
    assert empty.n == 0 and math.isnan(empty.median) and math.isnan(empty.low)
    assert Interval.of([NAN, NAN]).n == 0


def test_interval_coverage_is_one_minus_two_over_two_to_the_n() -> None:
    assert Interval.of([1.0, 2.0, 3.0]).coverage == pytest.approx(0.75)
    assert Interval.of([1.0, 2.0, 3.0, 4.0, 5.0]).coverage == pytest.approx(0.9375)
    assert Interval.of([1.0]).coverage == 0.0  # one repeat: no range to cover anything
    assert math.isnan(Interval.of([]).coverage)


def test_intervals_overlap_when_their_ranges_touch() -> None:
    low = Interval(105.0, 100.0, 110.0, 3)
    assert low.overlaps(Interval(115.0, 110.0, 120.0, 3))  # sharing an end counts
    assert Interval(115.0, 110.0, 120.0, 3).overlaps(low)
    assert not low.overlaps(Interval(115.0, 110.5, 120.0, 3))
    assert low.overlaps(Interval(104.0, 103.0, 106.0, 3))  # one inside the other
    assert Interval(104.0, 103.0, 106.0, 3).overlaps(low)


def test_interval_text() -> None:
    assert Interval.of([118.0, 123.0, 130.0]).text() == "123 (118 to 130)"
    assert Interval.of([1180.0, 1234.5, 1300.0]).text(1) == "1,234.5 (1,180.0 to 1,300.0)"
    assert Interval.of([0.0012, 0.0015]).text(2, scale=1000) == "1.35 (1.20 to 1.50)"
    assert Interval.of([42.0]).text(1) == "42.0"  # one repeat: no range
    assert Interval.of([]).text() == "-"


def test_interval_reads_the_flat_columns_of_a_cost_table_row() -> None:
    row = pd.Series({"server_cpu_us": 50.0, "server_cpu_us_low": 40.0,
                     "server_cpu_us_high": 70.0, "repeats": 3})
    assert interval(row, "server_cpu_us") == Interval(50.0, 40.0, 70.0, 3)


def test_an_unmeasured_column_reads_as_no_interval() -> None:
    row = pd.Series({"store_cpu_us": NAN, "store_cpu_us_low": NAN, "store_cpu_us_high": NAN,
                     "repeats": 3})
    store = interval(row, "store_cpu_us")
    assert store.text(1) == "-"
    assert store.n == 0


def hot(key: str, repeat: int, server: float, *, mode: str = "jwt", store: str = "memory",
        target: float | None = None, store_cpu: float = NAN, rps: float = 100.0,
        p99: float = 5.0, label: str = "target", users: int = 10, nodes: int = 1,
        endpoint: str = "GET /api/me", status: str = "ok") -> dict[str, Any]:
    """One window's hot row, as analysis.data.load.load_run gives it."""
    return {"cell": f"{key}-r{repeat}", "key": key, "repeat": repeat, "status": status,
            "endpoint": endpoint, "mode": mode, "store": store, "alg": "HS256",
            "lib": "pyjwt", "revocation": "none", "scenario": "read", "users": users,
            "nodes": nodes, "scale": 0, "server_cpu_us": server,
            "target_cpu_us": server if target is None else target, "store_cpu_us": store_cpu,
            "rps": rps, "p50_ms": p99 / 2, "p99_ms": p99, "bottleneck": label,
            "is_oversubscribed": False, "auth_cpu_mean_us": 20.0, "store_rtt_us": NAN,
            "store_wall_p50_us": NAN, "measured_seconds": 10.0}


def windows(key: str, costs: Sequence[float], **fields: Any) -> list[dict[str, Any]]:
    return [hot(key, repeat, cost, **fields) for repeat, cost in enumerate(costs, 1)]


def test_hot_rows_keep_one_row_per_measured_cell() -> None:
    rows = [hot("a", 1, 10.0, endpoint="POST /auth/login"), hot("a", 1, 10.0),
            hot("b", 1, 20.0, endpoint="GET /noauth"), hot("c", 1, 30.0, status="failed")]
    picked = hot_rows(pd.DataFrame(rows))
    assert list(picked["cell"]) == ["a-r1", "b-r1"]  # the failed cell is left out
    assert list(picked["endpoint"]) == ["GET /api/me", "GET /noauth"]


def test_cost_table_pairs_floor_ratios_by_repeat() -> None:
    # The machine drifts: repeat 2 is twice as slow for everything. Paired by repeat the
    # ratio to the floor is 0.5 in every repeat; a repeat without a floor window uses
    # the floor's median (150).
    frame = pd.DataFrame([
        *windows("none-read-u10-n1", [100.0, 200.0], mode="none", label="load generator"),
        *windows("jwt-memory-HS256-read-u10-n1", [200.0, 400.0, 300.0], rps=90.0),
    ])
    table = cost_table(frame).set_index("key")
    jwt = table.loc["jwt-memory-HS256-read-u10-n1"]
    assert jwt["repeats"] == 3
    assert interval(jwt, "server_cpu_us") == Interval(300.0, 200.0, 400.0, 3)
    assert interval(jwt, "floor_ratio") == Interval(0.5, 0.5, 0.5, 3)
    assert jwt["per_core_rps"] == pytest.approx(1e6 / 300.0)
    assert bool(jwt["is_target_bound"]) and jwt["bottleneck"] == "target"
    none = table.loc["none-read-u10-n1"]
    assert interval(none, "floor_ratio") == Interval(1.0, 1.0, 1.0, 2)
    assert none["bottleneck"] == "load generator" and not bool(none["is_target_bound"])


def test_cost_table_splits_target_and_store_and_counts_the_bottleneck_share() -> None:
    frame = pd.DataFrame([
        hot("session-redis-read-u10-n1", 1, 150.0, mode="session", store="redis",
            target=100.0, store_cpu=50.0, label="target"),
        hot("session-redis-read-u10-n1", 2, 170.0, mode="session", store="redis",
            target=110.0, store_cpu=60.0, label="store"),
        hot("session-redis-read-u10-n1", 3, 160.0, mode="session", store="redis",
            target=105.0, store_cpu=55.0, label="store"),
    ])
    row = cost_table(frame).iloc[0]
    assert interval(row, "target_cpu_us") == Interval(105.0, 100.0, 110.0, 3)
    assert interval(row, "store_cpu_us") == Interval(55.0, 50.0, 60.0, 3)
    assert interval(row, "server_cpu_us") == Interval(160.0, 150.0, 170.0, 3)
    assert row["bottleneck"] == "store" and row["bottleneck_share"] == pytest.approx(2 / 3)
    assert not bool(row["is_target_bound"])  # not every repeat was target-bound
    assert math.isnan(row["floor_ratio"])  # no floor in this run


def test_cost_table_of_nothing_measured_is_empty() -> None:
    assert cost_table(pd.DataFrame()).empty
    assert cost_table(pd.DataFrame([hot("a", 1, 10.0, status="failed")])).empty


def table_of(costs: dict[str, Sequence[float]]) -> pd.DataFrame:
    rows = []
    for key, values in costs.items():
        rows += windows(key, values, mode=key.split("-")[0])
    return cost_table(pd.DataFrame(rows))


def test_cost_order_joins_neighbours_whose_ranges_overlap() -> None:
    table = table_of({"session-memory": [108.0, 112.0, 115.0],
                      "jwt-memory": [200.0, 210.0, 220.0],
                      "none": [100.0, 105.0, 110.0],
                      "hybrid-memory": [300.0, 330.0, 360.0]})
    groups = cost_order(table)
    assert groups == [["none", "session-memory"], ["jwt-memory"], ["hybrid-memory"]]
    assert order_text(groups) == "none ≈ session-memory < jwt-memory < hybrid-memory"
    assert cost_order(pd.DataFrame()) == []


def test_cost_order_chains_through_a_middle_neighbour() -> None:
    # a and c do not overlap, but each overlaps b: a run that cannot order a-b or b-c
    # cannot order the three.
    table = table_of({"a": [100.0, 105.0, 110.0], "b": [109.0, 115.0, 121.0],
                      "c": [120.0, 125.0, 130.0]})
    assert order_text(cost_order(table)) == "a ≈ b ≈ c"


def test_sanity_warning_when_a_mode_costs_less_than_none_beyond_the_spread() -> None:
    table = table_of({"none": [100.0, 105.0, 110.0], "session-memory": [80.0, 85.0, 90.0],
                      "jwt-memory": [150.0, 160.0, 170.0]})
    (warning,) = sanity_warnings(table)
    assert warning.startswith("UNRELIABLE RUN: session-memory cost 85.0 (80.0 to 90.0) µs per "
                              "request, less than no auth at all (105.0 (100.0 to 110.0) µs)")


def test_no_sanity_warning_when_the_ranges_overlap_or_there_is_no_floor() -> None:
    overlapping = table_of({"none": [100.0, 105.0, 110.0],
                            "session-memory": [95.0, 99.0, 100.0]})
    assert sanity_warnings(overlapping) == []
    assert sanity_warnings(table_of({"session-memory": [80.0, 85.0, 90.0]})) == []
    assert sanity_warnings(pd.DataFrame()) == []


def test_sanity_warning_compares_only_the_same_users_and_nodes() -> None:
    rows = [*windows("none-u10", [100.0, 105.0, 110.0], mode="none", users=10),
            *windows("session-u50", [80.0, 85.0, 90.0], mode="session", users=50)]
    assert sanity_warnings(cost_table(pd.DataFrame(rows))) == []


def test_disturbed_windows_are_counted_and_warned() -> None:
    rows = pd.DataFrame({
        "status": "ok", "endpoint": "GET /api/me", "mode": ["none"] * 3 + ["jwt"] * 3,
        "key": ["none-read-u1-n1"] * 3 + ["jwt-memory-HS256-read-u1-n1"] * 3,
        "cell": [f"{i:03d}" for i in range(6)], "repeat": [1, 2, 3] * 2, "users": 1,
        "nodes": 1, "scenario": "read", "store": "memory", "alg": "HS256", "lib": "pyjwt",
        "revocation": "none", "scale": 0, "target_cpu_us": [100.0] * 3 + [200.0] * 3,
        "store_cpu_us": NAN, "server_cpu_us": [100.0] * 3 + [200.0] * 3, "rps": 1000.0,
        "p50_ms": 1.0, "p99_ms": 2.0, "bottleneck": "target",
        "foreign_cpu_share": [0.05, 0.05, 0.05, 0.05, 0.31, 0.42]})
    table = cost_table(rows).set_index("key")
    assert table.loc["none-read-u1-n1", "disturbed_windows"] == 0
    assert table.loc["jwt-memory-HS256-read-u1-n1", "disturbed_windows"] == 2
    [warning] = sanity_warnings(table.reset_index())
    assert warning.startswith("DISTURBED RUN: in 2 of 6 windows more than 15 % of the "
                              "machine's CPU (up to 42 %)")
    quiet = rows.assign(foreign_cpu_share=0.05)
    assert sanity_warnings(cost_table(quiet)) == []


def test_costs_rank_only_configurations_of_the_same_scenario_users_and_nodes() -> None:
    rows = [*windows("none-u10", [100.0, 105.0, 110.0], mode="none"),
            *windows("jwt-u10", [200.0, 210.0, 220.0]),
            *windows("session-u10-n2", [150.0, 155.0, 160.0], mode="session", nodes=2),
            *windows("session-u50", [90.0, 95.0, 99.0], mode="session", users=50)]
    table = cost_table(pd.DataFrame(rows))
    names = [name for name, _ in comparable_groups(table)]
    assert names == ["read scenario, 10 users, 1 node", "read scenario, 10 users, 2 nodes",
                     "read scenario, 50 users, 1 node"]
    with pytest.raises(ValueError, match="do not rank by cost"):
        cost_order(table)  # the cheapest of all (50 users) ranks against nothing
    assert order_lines(table) == [
        "Cheapest to dearest, read scenario, 10 users, 1 node: none-u10 < jwt-u10",
        "Cheapest to dearest, read scenario, 10 users, 2 nodes: session-u10-n2",
        "Cheapest to dearest, read scenario, 50 users, 1 node: session-u50"]
    # The answer's order: group by group, cheapest first within each.
    assert answer_order(table) == ["none-u10", "jwt-u10", "session-u10-n2", "session-u50"]
    assert list(ordered(table)["key"]) == answer_order(table)
    one = table[table["users"] == 10]
    one = one[one["nodes"] == 1]
    assert order_lines(one) == ["Cheapest to dearest: none-u10 < jwt-u10"]  # one: no name


def test_rps_and_bottleneck_text_say_when_the_target_did_not_bound_the_window() -> None:
    table = cost_table(pd.DataFrame([
        *windows("bound", [100.0, 110.0], rps=900.0),
        hot("loose", 1, 100.0, rps=800.0, label="load generator"),
        hot("loose", 2, 100.0, rps=850.0, label="target")]))
    rows = table.set_index("key")
    assert rps_text(rows.loc["bound"]) == "900 (900 to 900)"
    assert rps_text(rows.loc["loose"]) == "(825 (800 to 850): not the target's capacity)"
    assert limited_text(rows.loc["loose"]).endswith("(50 % of repeats)")
