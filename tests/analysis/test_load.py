"""The loader: CPU per request over the histograms' window, utilisation, the bottleneck."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from analysis.hdr import load_cell_histograms, measured_bounds
from analysis.load import cpu_between, load_run, window_requests
from tests.analysis.fixtures import ROOT, Usage, write_cell, write_metadata

CELL = "001-none-read-u10-n1-r1"


def test_cpu_between_interpolates_and_clamps() -> None:
    timeline = [[100.0, 0.0], [101.0, 1.0], [103.0, 2.0]]
    assert cpu_between(timeline, 100.5, 102.0) == pytest.approx(1.0)  # 0.5 -> 1.5
    assert cpu_between(timeline, 90.0, 200.0) == pytest.approx(2.0)  # outside: the ends


def test_cpu_per_request_uses_the_histograms_window_when_nodes_kept_a_timeline(
    tmp_path: Path
) -> None:
    run = tmp_path / "tiny"
    shutil.copytree(ROOT / "tiny", run)
    folder = run / "cells" / CELL
    bounds = measured_bounds(folder)
    assert bounds is not None
    start, end = bounds
    record = json.loads((folder / "cell.json").read_text())
    # Heavy CPU before and after the window (a login storm, the shutdown) must not count.
    record["nodes"][0]["cpu_timeline"] = [[start - 5, 0.0], [start, 40.0], [end, 42.0],
                                          [end + 5, 90.0]]
    (folder / "cell.json").write_text(json.dumps(record))
    histograms, failures = load_cell_histograms(folder)
    requests = sum(h.get_total_count() for name, h in histograms.items()
                   if not name.startswith(("auth ", "auth-cpu ", "store "))) + sum(
                       failures.values())
    assert requests == window_requests(histograms, failures) == 1000
    frame = load_run(run)
    row = frame[frame["cell"] == CELL].iloc[0]
    assert row["cpu_ms_per_request"] == pytest.approx(2.0 * 1000 / requests)
    assert row["target_util"] == pytest.approx(2.0 / 10)  # 2 CPU s over the 10 s window


def test_a_cell_without_a_timeline_keeps_the_older_estimate(tmp_path: Path) -> None:
    run = tmp_path / "tiny"
    shutil.copytree(ROOT / "tiny", run)
    folder = run / "cells" / "002-session-memory-read-u10-n1-r1"
    record = json.loads((folder / "cell.json").read_text())
    for key in ("generator", "cpu_busy", "placement", "window"):
        del record[key]
    record["nodes"] = [{"pid": 1, "cpu_seconds": 7.2, "peak_rss_bytes": 2**20}]
    (folder / "cell.json").write_text(json.dumps(record))
    row = load_run(run).set_index("cell").loc["002-session-memory-read-u10-n1-r1"]
    # CPU from the warm-up to Locust's exit over Locust's own count: 7.2 s / 900 requests.
    assert row["cpu_ms_per_request"] == pytest.approx(8.0)
    assert row["planned_seconds"] == pytest.approx(10.0)  # the cell's duration
    assert math.isnan(row["target_util"]) and math.isnan(row["generator_util"])
    assert row["bottleneck"] == "unknown"
    assert bool(row["is_pinned"]) is False


def test_store_cpu_is_added_to_the_cost_and_can_be_the_bottleneck(tmp_path: Path) -> None:
    write_metadata(tmp_path, "store")
    folder = tmp_path / "cells" / "001-session-redis-read-u10-n1-r1"
    # 1,000 requests and 10 failed ones; target 4.04 s, Redis 9.09 s of its 1 thread.
    write_cell(folder, {"mode": "session", "store": "redis"}, [3000] * 1000,
               Usage((4.04,), generator_s=2.0, store_s=9.09, cpu_busy=(0.41, 0.2)),
               auth_cpu_us=[4] * 1000, store_us=[100] * 500 + [300] * 500, failures=10,
               store_rtt_us=45.5)
    row = load_run(tmp_path).iloc[0]
    assert row["target_cpu_us"] == pytest.approx(4000.0)  # over 1,010 requests, failed too
    assert row["store_cpu_us"] == pytest.approx(9000.0)
    assert row["server_cpu_us"] == pytest.approx(13000.0)
    assert row["generator_cpu_us"] == pytest.approx(2.0e6 / 1010)
    assert row["store_util"] == pytest.approx(0.909)
    assert row["bottleneck"] == "store"
    assert row["store_rtt_us"] == pytest.approx(45.5)
    assert row["store_wall_p50_us"] == pytest.approx(100.0)
    assert row["auth_cpu_mean_us"] == pytest.approx(4.0, rel=1e-3)


def test_a_postgres_store_is_shared_by_every_core(tmp_path: Path) -> None:
    write_metadata(tmp_path, "store")
    folder = tmp_path / "cells" / "001-session-postgres-read-u10-n1-r1"
    write_cell(folder, {"mode": "session", "store": "postgres"}, [3000] * 1000,
               Usage((3.0,), generator_s=2.0, store_s=9.0, store_kind="postgres"))
    row = load_run(tmp_path).iloc[0]
    assert row["store_util"] == pytest.approx(9.0 / 10 / 2)  # 2 cores on the fixture machine
    assert row["bottleneck"] == "none"
    assert math.isnan(row["target_core_busy"])  # no per-core figures recorded


def test_an_unpinned_target_ignores_its_cores_business(tmp_path: Path) -> None:
    write_metadata(tmp_path, "unpinned")
    unpinned = {"is_pinned": False, "target_cpus": [0, 1], "generator_cpus": [0, 1]}
    folder = tmp_path / "cells" / "001-jwt-memory-HS256-read-u10-n2-r1"
    # 2 nodes on 2 shared cores: 6.0 s each is 60 % of 2 cores; the cores 99 % busy.
    write_cell(folder, {"mode": "jwt", "nodes": 2}, [3000] * 1000,
               Usage((6.0, 6.0), generator_s=3.0, cpu_busy=(0.99, 0.99),
                     placement=unpinned))
    row = load_run(tmp_path).iloc[0]
    assert row["target_util"] == pytest.approx(0.6)
    assert row["target_core_busy"] == pytest.approx(0.99)
    assert bool(row["is_pinned"]) is False and bool(row["is_oversubscribed"]) is False
    assert row["bottleneck"] == "none"  # the core rule is for pinned targets only
