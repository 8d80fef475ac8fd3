"""The loader: figures from known histograms, CPU per request over the histograms' window,
utilisation, the bottleneck, the probe and timeline files, and each file's format."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from analysis.cost.table import NOTHING_SATURATED, SHARED_CORE
from analysis.data.formats import CELL as CELL_FORMAT
from analysis.data.formats import RUN, UnknownFormat
from analysis.data.hdr import load_cell_histograms, measured_bounds
from analysis.data.load import (
    cpu_between,
    key_and_repeat,
    load_probes,
    load_run,
    load_timelines,
    usage_columns,
    window_requests,
)
from tests.analysis.fixtures import (
    ROOT,
    Usage,
    build_probes,
    write_cell,
    write_metadata,
    write_probe_cell,
)

CELL = "001-none-read-u10-n1-r1"
TINY = ROOT / "tiny"


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    """The tiny fixture run, loaded once (loading histograms is the slow part)."""
    return load_run(TINY)


def test_a_cell_folder_names_its_configuration_and_repeat() -> None:
    assert key_and_repeat("003-jwt-memory-HS256-read-u10-n1-r2") == \
        ("jwt-memory-HS256-read-u10-n1", 2)
    assert key_and_repeat("001-none-read-u10-n1") == ("none-read-u10-n1", 1)


def test_loader_figures_from_known_histograms(tiny: pd.DataFrame) -> None:
    frame = tiny
    hot = frame[frame["endpoint"] == "GET /api/me"].set_index("cell")
    none = hot.loc["001-none-read-u10-n1-r1"]
    assert none["requests"] == 1000
    assert none["rps"] == pytest.approx(100.0)  # 1,000 requests over a 10 s window
    assert none["p50_ms"] == pytest.approx(0.5, rel=1e-3)
    assert none["p99_ms"] == pytest.approx(0.99, rel=1e-3)
    assert none["max_ms"] == pytest.approx(1.0, rel=1e-3)
    assert math.isnan(none["auth_p50_ms"])
    assert none["cpu_ms_per_request"] == pytest.approx(2.5)  # 2.5 CPU s in the window / 1,000
    assert none["measured_seconds"] == pytest.approx(10.0)
    assert none["planned_seconds"] == pytest.approx(10.0)
    session = hot.loc["002-session-memory-read-u10-n1-r1"]
    assert session["auth_p50_ms"] == pytest.approx(0.005)
    assert session["auth_cpu_mean_us"] == pytest.approx(4.0, rel=1e-3)
    assert session["auth_cpu_p50_us"] == pytest.approx(4.0)
    assert math.isnan(session["store_wall_p50_us"])  # no store call: no store histogram
    assert session["credential_bytes"] == 49
    assert bool(session["revoked_after_logout"]) is True
    assert hot.loc["003-jwt-memory-HS256-read-u10-n1-r1", "sign_us"] == pytest.approx(12.5)
    assert math.isnan(session["sign_us"]) and math.isnan(session["store_rtt_us"])
    redis = hot.loc["007-session-redis-read-u10-n1-r1"]
    assert redis["store_wall_p50_us"] == pytest.approx(250.0)  # Server-Timing store
    assert redis["store_rtt_us"] == pytest.approx(45.5)
    assert redis["auth_p50_ms"] == pytest.approx(0.3)  # wall: includes awaiting the store
    assert redis["auth_cpu_p50_us"] == pytest.approx(6.0)  # CPU: does not
    split = hot.loc["004-session-memory-read-u10-n2-r1"]
    assert split["error_rate"] == pytest.approx(0.5)
    failed = frame[frame["cell"] == "006-hybrid-memory-HS256-read-u10-n1-r1"].iloc[0]
    assert failed["status"] == "failed" and "verification failed" in failed["reason"]


@pytest.mark.parametrize(
    ("cell", "target_us", "target_util", "generator_util", "core_busy", "label", "is_over"),
    [
        # 2.5 s of target CPU / 1,000 requests; 9.0 s of generator CPU on its 1 core: 90 %.
        ("001-none-read-u10-n1-r1", 2500.0, 0.25, 0.9, 0.27, "load generator", False),
        ("002-session-memory-read-u10-n1-r1", 4000.0, 0.36, 0.4, 0.38, NOTHING_SATURATED, False),
        ("003-jwt-memory-HS256-read-u10-n1-r1", 11000.0, 0.88, 0.3, 0.9, "target", False),
        # 2 nodes x 1.5 s over 500 answered + 500 failed requests, on the 1 target core;
        # the core was 97 % busy but the targets used 30 %: other work filled it.
        ("004-session-memory-read-u10-n2-r1", 3000.0, 0.3, 0.2, 0.97, SHARED_CORE, True),
        # 72 % is under 85 %; the pinned core was 98 % busy: full, and not only of targets.
        ("005-jwt-memory-HS256-read-u10-n2-r1", 4500.0, 0.72, 0.55, 0.98, SHARED_CORE, True),
        # Redis's one thread was 88 % busy: the store limited this window.
        ("007-session-redis-read-u10-n1-r1", 1500.0, 0.3, 0.4, 0.31, "store", False),
    ])
def test_cost_utilisation_and_bottleneck_per_cell(cell: str, target_us: float,
                                                  target_util: float, generator_util: float,
                                                  core_busy: float, label: str,
                                                  is_over: bool, tiny: pd.DataFrame) -> None:
    frame = tiny
    row = frame[(frame["cell"] == cell) & (frame["endpoint"] == "GET /api/me")].iloc[0]
    assert row["target_cpu_us"] == pytest.approx(target_us)
    if row["store"] == "memory":  # no shared store: no store CPU
        assert row["server_cpu_us"] == pytest.approx(target_us)
        assert math.isnan(row["store_cpu_us"]) and math.isnan(row["store_util"])
    else:  # 8.8 s of Redis CPU over 2,000 requests; its one thread 88 % busy
        assert row["store_cpu_us"] == pytest.approx(4400.0)
        assert row["server_cpu_us"] == pytest.approx(target_us + 4400.0)
        assert row["store_util"] == pytest.approx(0.88)
    assert row["target_util"] == pytest.approx(target_util)
    assert row["generator_util"] == pytest.approx(generator_util)
    assert row["target_core_busy"] == pytest.approx(core_busy)
    assert row["bottleneck"] == label
    assert bool(row["is_pinned"]) is True
    assert bool(row["is_oversubscribed"]) is is_over




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
    assert row["bottleneck"] == NOTHING_SATURATED
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
    assert row["bottleneck"] == NOTHING_SATURATED  # the core rule is for pinned targets only


def test_an_endpoint_that_only_failed_still_has_a_row(tmp_path: Path) -> None:
    run = tmp_path / "tiny"
    shutil.copytree(TINY, run)
    hdr = run / "cells" / "003-jwt-memory-HS256-read-u10-n1-r1" / "hdr-fixture-1.json"
    data = json.loads(hdr.read_text())
    data["failures"] = {"POST /auth/refresh": 40}
    hdr.write_text(json.dumps(data))
    frame = load_run(run)
    row = frame[(frame["cell"] == "003-jwt-memory-HS256-read-u10-n1-r1")
                & (frame["endpoint"] == "POST /auth/refresh")].iloc[0]
    assert row["failures"] == 40 and row["requests"] == 0 and row["error_rate"] == 1.0


def test_load_probes_keeps_ok_cells_and_names_the_series(tmp_path: Path) -> None:
    probes = load_probes(build_probes(tmp_path))
    assert set(probes["cell"]) == {"001-session-redis-revocation-u4-n2-r1",
                                   "002-jwt-memory-revocation-u4-n2-r1",
                                   "003-jwt-memory-revocation-u4-n1-r1"}
    assert len(probes) == 10 + 6 + 1
    assert probes.loc[probes["cell"].str.startswith("001"), "key"].iloc[0] == \
        "session-redis-revocation-u4-n2"
    series = set(probes["series"])
    assert "session in redis, 2 nodes · node that logged out" in series
    assert "session in redis, 2 nodes · other nodes" in series


def _scenario_run(run: Path) -> Path:
    """A run of one ok cell holding a probe file and a timeline file."""
    write_metadata(run, "scenarios")
    write_probe_cell(run, "001-x-r1", {"mode": "jwt", "nodes": 1}, [])
    (run / "cells" / "001-x-r1" / "timeline-h-1.json").write_text(json.dumps({
        "format": "authbench-timeline/1", "host": "h", "pid": 1,
        "seconds": [{"second": 0, "ok": 5, "rejected": 1, "p50_ms": 1.0, "p99_ms": 2.0,
                     "max_ms": 3.0}]}))
    return run


def test_load_timelines_adds_up_each_second(tmp_path: Path) -> None:
    frame = load_timelines(_scenario_run(tmp_path))
    assert frame[["second", "ok", "rejected", "requests", "p99_ms"]].to_dict("records") == [
        {"second": 0, "ok": 5, "rejected": 1, "requests": 6, "p99_ms": 2.0}]


@pytest.mark.parametrize(("file", "kind", "reader"), [
    ("metadata.json", "run", load_run),
    ("cells/001-x-r1/cell.json", "cell", load_timelines),
    ("cells/001-x-r1/timeline-h-1.json", "timeline", load_timelines),
    ("cells/001-x-r1/probe-host-1.json", "probe", load_probes),
])
def test_a_file_in_an_unknown_format_is_refused_by_name(
        tmp_path: Path, file: str, kind: str, reader: Callable[[Path], pd.DataFrame]) -> None:
    path = _scenario_run(tmp_path) / file
    path.write_text(json.dumps({**json.loads(path.read_text()),
                                "format": f"authbench-{kind}/9"}))
    with pytest.raises(UnknownFormat, match=re.escape(
            f"{path}: format 'authbench-{kind}/9', and this authbench reads authbench-{kind}/")):
        reader(tmp_path)


def test_a_run_without_format_keys_reads_as_one_with_them(tmp_path: Path) -> None:
    # The checked-in runs predate "format": metadata.json has schema_version 1, cell.json
    # no version. The same run in today's formats must read the same.
    assert "format" not in json.loads((TINY / "metadata.json").read_text())
    run = tmp_path / "tiny"
    shutil.copytree(TINY, run)
    for path, kind in [(run / "metadata.json", RUN),
                       *((p, CELL_FORMAT) for p in run.glob("cells/*/cell.json"))]:
        data = json.loads(path.read_text())
        data.pop("schema_version", None)
        path.write_text(json.dumps({**data, "format": kind.current}))
    pd.testing.assert_frame_equal(load_run(run), load_run(TINY))


def _usage_record(generator: list[dict[str, object]]) -> dict[str, object]:
    """Ten seconds on two CPUs, each 60 % busy: a node used 6 s of CPU, the generator
    entries what they say."""
    return {"cell": {"nodes": 1, "workers": 2},
            "placement": {"is_pinned": False, "target_cpus": [0, 1], "generator_cpus": [0, 1]},
            "nodes": [{"cpu_timeline": [[100.0, 0.0], [110.0, 6.0]]}],
            "generator": generator, "cpu_busy": [0.6, 0.6]}


def _generator(cpu: float, host: str, reported: bool) -> dict[str, object]:
    return {"host": host, "is_reported": reported, "cpu_timeline": [[100.0, 0.0], [110.0, cpu]]}


def test_a_worker_on_another_host_counts_for_the_generator_not_for_this_machines_cpus() -> None:
    here = [_generator(4.0, "box", reported=False)]
    elsewhere = [*here, _generator(4.0, "far", reported=True)]
    quiet = usage_columns(_usage_record(here), (100.0, 110.0), 1000, 2, "box")
    remote = usage_columns(_usage_record(elsewhere), (100.0, 110.0), 1000, 2, "box")
    # 12 busy CPU-seconds here, 6 target + 4 generator: 2 of 20 foreign.
    assert quiet["foreign_cpu_share"] == pytest.approx(0.1)
    assert remote["foreign_cpu_share"] == pytest.approx(0.1)  # not 4 s less than nothing
    assert remote["generator_cpu_us"] == pytest.approx(8000.0)
    # A worker that reported from this host (started by hand here) did use its CPUs.
    same = [*here, _generator(2.0, "box", reported=True)]
    assert usage_columns(_usage_record(same), (100.0, 110.0), 1000, 2, "box")[
        "foreign_cpu_share"] == pytest.approx(0.0)
