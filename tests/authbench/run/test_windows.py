"""Interleaved windows end to end: every configuration up once, short windows rotated."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from analysis.cost.table import BOTTLENECKS, cost_table
from analysis.data.load import load_run
from analysis.report.writer import write_report
from authbench.run.rundir import RunDir
from authbench.run.runner import RunOptions, run_suite
from authbench.run.suite import SERVICES, load_suite
from tests.support import closed_port, read_json

pytestmark = pytest.mark.slow  # real interleaved suite runs

SUITE = """name = "windows"
repeats = 2
interleave = "windows"
[defaults]
users = 3
duration = 1.5
warmup = 0.5
[[matrix]]
mode = ["none", "jwt"]
"""


@pytest.fixture(scope="module")
def windows_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("windows")
    (folder / "suite.toml").write_text(SUITE)
    out = io.StringIO()
    run = run_suite(load_suite(str(folder / "suite.toml"), SERVICES),
                    RunOptions(results=folder / "results", out=out))
    return run.path, out.getvalue()


def test_configurations_log_in_once_and_windows_rotate(windows_run: tuple[Path, str]) -> None:
    run, progress = windows_run
    assert read_json(run / "metadata.json")["interleave"] == "windows"
    names = sorted(p.name for p in (run / "cells").iterdir())
    assert names == ["001-none-read-u3-n1-r1", "002-jwt-memory-HS256-read-u3-n1-r1",
                     "003-none-read-u3-n1-r2", "004-jwt-memory-HS256-read-u3-n1-r2"]
    assert "load phase: 2 configurations" in progress and "FAILED" not in progress
    records = [read_json(run / "cells" / name / "cell.json") for name in names]
    # One rig per configuration, shared by its repeats: same node, same Locust process.
    assert records[0]["topology"]["node_pids"] == records[2]["topology"]["node_pids"]
    assert records[0]["rig"] == records[2]["rig"] == "rigs/none-read-u3-n1"
    assert (run / "rigs" / "none-read-u3-n1" / "node-1.log").exists()
    assert (run / "rigs" / "none-read-u3-n1" / "locust.html").exists()
    assert [r["window"]["seq"] for r in records] == [1, 1, 2, 2]
    for record in records:
        assert record["status"] == "ok", record["reason"]
        window = record["window"]
        assert window["planned_seconds"] == 1.5
        assert window["measure_until"] - window["measure_from"] == pytest.approx(1.5)
        [hdr] = [read_json(p) for p in (run / "cells" / record["name"]).glob("hdr-*.json")]
        # The histograms cover exactly the planned window, logins long done.
        assert hdr["measured_from"] == window["measure_from"]
        assert hdr["measured_until"] == window["measure_until"]
        [node] = record["nodes"]
        assert node["cpu_timeline"][0][0] >= window["measure_from"]
        assert node["cpu_timeline"][-1][0] >= window["measure_until"]
        assert record["generator"] and record["generator"][0]["cpu_seconds"] > 0
        assert record["placement"]["is_pinned"] == (len(os.sched_getaffinity(0)) >= 2)
    jwt = records[1]
    assert jwt["sign_us"] > 0 and "sign_us" not in records[0]


def test_analysis_reads_cost_and_bottleneck(windows_run: tuple[Path, str]) -> None:
    run, _ = windows_run
    frame = load_run(run)
    hot = frame[frame["endpoint"] == "GET /api/me"]
    assert len(hot) == 4
    assert hot["measured_seconds"].tolist() == pytest.approx([1.5] * 4)
    assert (hot["target_cpu_us"] > 0).all() and (hot["generator_cpu_us"] > 0).all()
    assert hot["bottleneck"].isin(BOTTLENECKS).all()
    assert (hot["auth_cpu_mean_us"] > 0).all()
    table = cost_table(frame)
    assert set(table["key"]) == {"none-read-u3-n1", "jwt-memory-HS256-read-u3-n1"}
    assert (table["repeats"] == 2).all()
    # Verifying a JWT costs CPU that the floor does not spend.
    jwt = table[table["mode"] == "jwt"].iloc[0]
    none = table[table["mode"] == "none"].iloc[0]
    assert jwt["auth_cpu_us"] > 5 * none["auth_cpu_us"]
    paths = write_report(run)
    text = paths["markdown"].read_text()
    assert "Cost per request" in text and "Cheapest to dearest" in text


def test_a_resumed_windows_run_measures_what_is_missing(
    windows_run: tuple[Path, str], tmp_path: Path
) -> None:
    """A resume starts the rigs again in the same folders, where the first session left
    its control file and readiness reports: they must not be read as the new ones."""
    run, _ = windows_run
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    assert (copy / "rigs" / "jwt-memory-HS256-read-u3-n1" / "control.json").exists()
    shutil.rmtree(copy / "cells" / "004-jwt-memory-HS256-read-u3-n1-r2")
    resumed = RunDir.open(copy)
    resumed.update_metadata(status="interrupted")
    out = io.StringIO()
    run_suite(load_suite(str(copy / "suite.toml"), SERVICES),
              RunOptions(results=tmp_path, out=out), resume=resumed)
    record = read_json(copy / "cells" / "004-jwt-memory-HS256-read-u3-n1-r2" / "cell.json")
    assert record["status"] == "ok", record["reason"]
    assert record["window"]["seq"] == 1  # the new Locust's first window
    assert "load phase: 1 configurations" in out.getvalue()
    assert read_json(copy / "metadata.json")["status"] == "complete"


def test_a_configuration_that_cannot_come_up_fails_its_windows_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An RS256 token is longer than 256 bytes: refused unread, so the target fails its
    # conformance check; a Redis on a closed port never answers.
    monkeypatch.setenv("MAX_CREDENTIAL_BYTES", "256")
    (tmp_path / "suite.toml").write_text(SUITE.replace('mode = ["none", "jwt"]', (
        'mode = "none"\n[[matrix]]\nmode = "jwt"\nalg = "RS256"\n'
        '[[matrix]]\nmode = "session"\nstore = "redis"')))
    out = io.StringIO()
    options = RunOptions(results=tmp_path / "results", out=out,
                         redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    run = run_suite(load_suite(str(tmp_path / "suite.toml"), SERVICES), options).path
    records = {p.name: read_json(p / "cell.json") for p in (run / "cells").iterdir()}
    assert len(records) == 6  # 3 configurations x 2 repeats, every window recorded
    for name, record in records.items():
        if "-none-" in name:
            assert record["status"] == "ok", record["reason"]
        elif "RS256" in name:
            assert record["status"] == "failed"
            assert record["reason"].startswith("verification failed on http://127.0.0.1:")
        else:
            assert record["status"] == "failed" and "StoreUnavailable" in record["reason"]
    assert read_json(run / "metadata.json")["status"] == "complete"
    assert "verification failed" in out.getvalue()  # said once, when the rig failed
