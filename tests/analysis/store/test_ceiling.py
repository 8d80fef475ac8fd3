"""The store-ceiling reader on a small checked-in file of known figures."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from analysis.data.formats import UnknownFormat
from analysis.store.ceiling import (
    cluster_bound_rps,
    load_store_ceiling,
    mode_ceiling,
    mode_key,
    parse_store_ceiling,
    store_capacity_rps,
    store_cpu_us_per_request,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "store-ceiling"


def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURE / "store-ceiling.json").read_text())
    return data


def test_a_run_without_the_file_has_no_ceiling(tmp_path: Path) -> None:
    assert load_store_ceiling(tmp_path) is None


def test_the_file_reads_per_store_and_operation() -> None:
    ceiling = load_store_ceiling(FIXTURE)
    assert ceiling is not None
    get = ceiling.operation("redis", "session-get")
    assert get is not None
    assert (get.ops_per_s, get.ops_per_s_range, get.cpu_us_per_op) == (100_000.0,
                                                                      (98_000.0, 102_000.0), 9.5)
    assert (get.clients, get.limited_by, get.is_store_bound) == (50, "store and client", True)
    check = ceiling.operation("redis", "revocation-check")
    assert check is not None and not check.is_store_bound
    assert check.ops_per_s_at_full_cpu == pytest.approx(100_000.0)  # 10^6 / 10 µs
    touch = ceiling.operation("postgres", "session-touch")
    assert touch is not None and touch.limited_by == "mixed: store, neither"
    assert ceiling.operation("postgres", "no-such-op") is None
    assert ceiling.stores["redis"].version == "7.0.15"
    assert ceiling.stores["postgres"].store_cpus == (0,)


def test_capacity_per_mode_is_ops_over_operations_per_request() -> None:
    ceiling = load_store_ceiling(FIXTURE)
    assert ceiling is not None
    assert store_capacity_rps(ceiling, "session-redis") == pytest.approx(100_000.0)
    assert store_capacity_rps(ceiling, "jwt-redis-blocklist") == pytest.approx(80_000.0)
    assert store_capacity_rps(ceiling, "hybrid-postgres-blocklist") == pytest.approx(25_000.0)
    assert store_capacity_rps(ceiling, "session-postgres") == pytest.approx(20_000.0)
    assert mode_ceiling(ceiling, "session-postgres") == pytest.approx(20_000.0)


def test_no_store_call_means_no_store_bound() -> None:
    ceiling = load_store_ceiling(FIXTURE)
    assert ceiling is not None
    assert store_capacity_rps(ceiling, "jwt-redis-pubsub") == math.inf
    assert store_capacity_rps(ceiling, "jwt-postgres") == math.inf
    assert mode_ceiling(ceiling, "jwt-redis-pubsub") is None  # no operations to count
    assert store_cpu_us_per_request(ceiling, "jwt-redis-pubsub") == 0.0
    assert store_capacity_rps(ceiling, "no-such-mode") is None


def test_operations_of_one_request_add_their_times() -> None:
    data = _data()
    data["modes"]["two-gets-one-check"] = {"per_request": [
        {"store": "redis", "operation": "session-get", "per_request": 2},
        {"store": "redis", "operation": "revocation-check", "per_request": 1}],
        "periodic": [], "hot_path": "made up"}
    ceiling = parse_store_ceiling(data)
    expected = 1 / (2 / 100_000 + 1 / 80_000)  # the store's seconds per request, inverted
    assert store_capacity_rps(ceiling, "two-gets-one-check") == pytest.approx(expected)
    assert mode_ceiling(ceiling, "two-gets-one-check") == pytest.approx(3 * expected)
    assert store_cpu_us_per_request(ceiling, "two-gets-one-check") == pytest.approx(2 * 9.5 + 10)


def test_active_sessions_touches_take_their_share_first() -> None:
    ceiling = load_store_ceiling(FIXTURE)
    assert ceiling is not None
    # 900,000 active sessions touch 15,000 times a second: 1/6 of 90,000 touches/s.
    left = store_capacity_rps(ceiling, "session-redis", active_sessions=900_000)
    assert left == pytest.approx(100_000 * (1 - 15_000 / 90_000))
    assert store_capacity_rps(ceiling, "session-redis", active_sessions=10**9) == 0.0


def test_an_unmeasured_store_gives_no_figure() -> None:
    data = _data()
    del data["stores"]["postgres"]
    data["skipped"] = {"postgres": "nothing answers at 127.0.0.1:5432"}
    ceiling = parse_store_ceiling(data)
    assert store_capacity_rps(ceiling, "session-postgres") is None
    assert mode_ceiling(ceiling, "session-postgres") is None
    assert store_cpu_us_per_request(ceiling, "session-postgres") is None
    assert "postgres: not measured (nothing answers at 127.0.0.1:5432)" in ceiling.describe()


def test_describe_says_what_limited_each_figure() -> None:
    ceiling = load_store_ceiling(FIXTURE)
    assert ceiling is not None
    lines = ceiling.describe()
    assert ("redis 7.0.15, alone on CPU 0, the client on CPU 1, driven by "
            "redis-benchmark 7.0.15:") in lines
    check = next(line for line in lines if "revocation-check: 80,000" in line)
    assert "limited by client (a lower bound" in check and "100,000 ops/s at 100 %" in check
    get = next(line for line in lines if "session-get: 100,000" in line)
    assert get.endswith("limited by store and client")
    touch = next(line for line in lines if "session-touch: 10,000" in line)
    assert touch.endswith("limited by mixed: store, neither (a lower bound: the store was not "
                          "saturated; its CPU per op implies 11,111 ops/s at 100 %); other "
                          "work shared the CPUs in 1 repeat(s)")


@pytest.mark.parametrize(("mode", "store", "revocation", "key"), [
    ("session", "redis", "none", "session-redis"),
    ("session", "postgres", "blocklist", "session-postgres"),
    ("jwt", "redis", "blocklist", "jwt-redis-blocklist"),
    ("hybrid", "redis", "pubsub", "hybrid-redis-pubsub"),
    ("jwt", "postgres", "none", "jwt-postgres"),
])
def test_mode_keys_name_the_file_s_modes(mode: str, store: str, revocation: str,
                                         key: str) -> None:
    assert mode_key(mode, store, revocation) == key
    assert key in _data()["modes"]


def test_cluster_bound_is_the_smaller_term() -> None:
    assert cluster_bound_rps(10_000, 4, 100_000) == 40_000
    assert cluster_bound_rps(10_000, 20, 100_000) == 100_000
    assert cluster_bound_rps(10_000, 20, math.inf) == 200_000
    assert cluster_bound_rps(10_000, 4, None) is None  # unmeasured: no bound claimed


def test_another_version_is_refused(tmp_path: Path) -> None:
    shutil.copy(FIXTURE / "store-ceiling.json", tmp_path / "store-ceiling.json")
    data = _data()
    data["format"] = "authbench-store-ceiling/2"
    (tmp_path / "store-ceiling.json").write_text(json.dumps(data))
    with pytest.raises(UnknownFormat, match="authbench-store-ceiling/1"):
        load_store_ceiling(tmp_path)
