"""Open-model cells end to end: calibration of the floor, rates on the configuration's
rig, and what cell.json, the histogram files and the tidy frame keep of them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from analysis.load import load_run
from authbench.run.runner import RunOptions, run_suite
from authbench.run.suite import SERVICES, load_suite
from tests.support import read_json

pytestmark = pytest.mark.slow

SUITE = """name = "rates"
interleave = "{interleave}"
[defaults]
users = 4
duration = 1.5
warmup = 0.5
rate = {rates}
[[matrix]]
mode = {modes}
"""


def run(folder: Path, interleave: str, rates: str, modes: str) -> tuple[Path, str]:
    folder.mkdir()
    (folder / "suite.toml").write_text(SUITE.format(interleave=interleave, rates=rates,
                                                    modes=modes))
    out = io.StringIO()
    done = run_suite(load_suite(str(folder / "suite.toml"), SERVICES),
                     RunOptions(results=folder / "results", out=out))
    return done.path, out.getvalue()


@pytest.fixture(scope="module")
def windows_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return run(tmp_path_factory.mktemp("rates") / "w", "windows", '["", "50%", 200]',
               '["none", "jwt"]')


def test_the_floor_is_measured_once_on_its_own_rig_and_shares_resolve_to_it(
    windows_run: tuple[Path, str]
) -> None:
    path, progress = windows_run
    calibration = read_json(path / "metadata.json")["calibration"]
    assert calibration["cell_key"] == "none-read-u4-n1"
    assert calibration["requests"] > 0 and calibration["capacity_rps"] > 0
    assert calibration["capacity_rps"] == pytest.approx(
        calibration["requests"] / calibration["seconds"])
    assert "calibration: the floor served" in progress and "FAILED" not in progress
    assert not (path / "rigs" / "calibration").exists()  # the run's own none rig did it
    records = {p.name: read_json(p / "cell.json") for p in (path / "cells").iterdir()}
    assert len(records) == 6 and all(r["status"] == "ok" for r in records.values())
    by_key = {r["cell"]["mode"] + "/" + r["cell"]["rate"]: r for r in records.values()}
    half = by_key["jwt/50%"]["rate"]
    assert half == {"spec": "50%", "offered": pytest.approx(calibration["capacity_rps"] / 2),
                    "floor_capacity": calibration["capacity_rps"]}
    assert by_key["none/200"]["rate"]["offered"] == 200
    assert "rate" not in by_key["none/"]
    # A configuration's rates run on its one rig: same nodes, same Locust.
    assert by_key["jwt/"]["rig"] == by_key["jwt/50%"]["rig"] == by_key["jwt/200"]["rig"]
    assert (by_key["jwt/"]["topology"]["node_pids"]
            == by_key["jwt/200"]["topology"]["node_pids"])


def test_an_open_cell_sends_its_schedule_and_the_frame_says_so(
    windows_run: tuple[Path, str]
) -> None:
    path, _ = windows_run
    folder = next((path / "cells").glob("*-jwt-*-at200-r1"))
    (hdr,) = folder.glob("hdr-*.json")
    body = read_json(hdr)
    assert body["format"] == "authbench-hdr/3"
    assert body["open"]["scheduled"] == 300  # 200/s over the 1.5 measured seconds
    assert body["open"]["sent"] == 300 and body["open"]["in_flight_limit"] == 4
    assert {"GET /api/me", "service GET /api/me", "schedule-lag"} <= set(body["histograms"])
    frame = load_run(path)
    row = frame[frame["cell"] == folder.name].set_index("endpoint").loc["GET /api/me"]
    assert row["rate_offered"] == 200 and row["rate_spec"] == "200"
    assert row["rate_achieved"] == pytest.approx(200, rel=0.05)
    assert row["arrivals_scheduled"] == 300 and row["arrivals_sent"] == 300
    assert row["schedule_lag_p50_ms"] < row["p50_ms"] + 1e-9
    assert row["service_p50_ms"] <= row["p50_ms"] + 1e-9  # time from the intended send
    assert row["config"] == "jwt-memory-HS256-read-u4-n1"
    closed = frame[(frame["config"] == "jwt-memory-HS256-read-u4-n1")
                   & (frame["rate_spec"] == "") & (frame["endpoint"] == "GET /api/me")]
    assert len(closed) == 1 and closed["rate_offered"].isna().all()


def test_a_share_without_a_floor_in_the_suite_gets_a_rig_of_its_own(tmp_path: Path) -> None:
    path, progress = run(tmp_path / "c", "cells", '["25%"]', '["jwt"]')
    calibration = read_json(path / "metadata.json")["calibration"]
    assert calibration["cell_key"] == "none-read-u4-n1" and calibration["capacity_rps"] > 0
    (record,) = [read_json(p / "cell.json") for p in (path / "cells").iterdir()]
    assert record["status"] == "ok", progress
    assert record["rate"]["offered"] == pytest.approx(calibration["capacity_rps"] / 4)
