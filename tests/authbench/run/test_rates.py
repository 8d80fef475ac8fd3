"""Open-model cells end to end: calibration of the floor, the dearest configuration's
closed-loop req/s, rates on the configuration's rig, and what cell.json, the histogram
files and the tidy frame keep of them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from analysis.data.load import load_run
from authbench.run.calibration import (
    CPU_BASIS,
    SERVED_BASIS,
    CalibrationFailed,
    DearestRate,
    dearest_windows,
    measure_dearest,
)
from authbench.run.cell import Cell
from authbench.run.progress import Progress
from authbench.run.rundir import RunDir
from authbench.run.runner import RunOptions, plan, run_suite
from authbench.run.suite import SERVICES, load_suite, parse_suite
from tests.analysis.fixtures import Usage, write_cell, write_metadata
from tests.support import read_json

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


def test_a_share_of_the_dearest_is_its_own_rate_spec() -> None:
    cell = Cell(rate="50 %dearest")
    assert cell.rate == "50%dearest" and cell.key.endswith("-at50pctdearest")
    assert cell.dearest_fraction == 0.5 and cell.rate_fraction is None
    assert cell.offered_rate(None, 3000.0) == 1500
    with pytest.raises(ValueError, match="needs the dearest configuration's"):
        cell.offered_rate(4000.0)  # the floor's capacity is not what it is a share of
    assert Cell(rate="50%").dearest_fraction is None and Cell(rate=200).dearest_fraction is None
    for bad in ("dearest", "50dearest", "%dearest", "0%dearest"):
        with pytest.raises(ValueError):
            Cell(rate=bad)


def test_shares_of_the_dearest_run_a_round_late_after_the_windows_that_set_them() -> None:
    suite = parse_suite('name = "t"\nrepeats = 3\n[defaults]\nrate = ["50%dearest", ""]\n'
                        '[[matrix]]\nmode = ["none", "jwt"]\n', "t.toml")
    order = [(name.split("-", 1)[0], cell.mode, cell.rate, repeat)
             for name, cell, repeat in plan(suite)]
    assert order == [("001", "none", "", 1), ("002", "jwt", "", 1),
                     ("003", "none", "", 2), ("004", "jwt", "", 2),
                     ("005", "none", "50%dearest", 1), ("006", "jwt", "50%dearest", 1),
                     ("007", "none", "", 3), ("008", "jwt", "", 3),
                     ("009", "none", "50%dearest", 2), ("010", "jwt", "50%dearest", 2),
                     ("011", "none", "50%dearest", 3), ("012", "jwt", "50%dearest", 3)]
    assert dearest_windows(plan(suite)) == {
        "001-none-read-u10-n1-r1": "none-read-u10-n1",
        "002-jwt-memory-HS256-read-u10-n1-r1": "jwt-memory-HS256-read-u10-n1",
        "003-none-read-u10-n1-r2": "none-read-u10-n1",
        "004-jwt-memory-HS256-read-u10-n1-r2": "jwt-memory-HS256-read-u10-n1"}
    # One repeat: the closed-loop windows first, then the shares.
    once = parse_suite('name = "t"\n[defaults]\nrate = ["50%dearest", ""]\n[[matrix]]\n'
                       'mode = "jwt"\n', "t.toml")
    assert [(c.rate, r) for _, c, r in plan(once)] == [("", 1), ("50%dearest", 1)]
    # Without a share of the dearest the plan keeps the suite's order.
    other = parse_suite('name = "t"\nrepeats = 2\n[defaults]\nrate = ["50%", ""]\n'
                        '[[matrix]]\nmode = "jwt"\n', "t.toml")
    assert [(c.rate, r) for _, c, r in plan(other)] == [("50%", 1), ("", 1), ("50%", 2),
                                                         ("", 2)]
    assert dearest_windows(plan(other)) == {}


def closed_window(run: Path, name: str, requests: int, target_s: tuple[float, ...] = (1.0,),
                  failures: int = 0, status: str = "ok") -> None:
    """A finished closed-loop window of 10 s as the runner writes it (tests/analysis)."""
    write_cell(run / "cells" / name, {"mode": "jwt"}, [1000] * requests,
               Usage(target_s=target_s), failures=failures)
    if status != "ok":
        record = read_json(run / "cells" / name / "cell.json")
        (run / "cells" / name / "cell.json").write_text(json.dumps({**record, "status": status}))


def test_the_dearest_is_the_highest_cpu_per_request_of_windows_that_held(
    tmp_path: Path
) -> None:
    write_metadata(tmp_path, "t")
    closed_window(tmp_path, "001-a-r1", 8000, (0.8,))  # 100 µs: 10,000 req/s on a core
    closed_window(tmp_path, "002-b-r1", 5000, (1.0,))  # 200 µs: 5,000
    closed_window(tmp_path, "003-c-r1", 1000, (1.0,), status="failed")
    closed_window(tmp_path, "004-d-r1", 1900, (1.0,), failures=100)  # 5 % failed
    keys = {"001-a-r1": "a", "002-b-r1": "b", "003-c-r1": "c", "004-d-r1": "d",
            "005-e-r1": "e"}  # e never ran
    dearest = measure_dearest(tmp_path, keys)
    assert (dearest.key, dearest.rps) == ("b", pytest.approx(5000))
    assert dearest.windows == {"001-a-r1": pytest.approx(10_000),
                               "002-b-r1": pytest.approx(5000)}
    assert dearest.basis == CPU_BASIS
    # A window without a CPU figure counts by what it served: 3,000 requests in 10 s.
    closed_window(tmp_path, "006-f-r1", 3000, ())
    served = measure_dearest(tmp_path, {**keys, "006-f-r1": "f"})
    assert (served.key, served.rps) == ("f", pytest.approx(300))
    assert served.basis == f"{SERVED_BASIS}; {CPU_BASIS}"
    # A configuration's capacity is the median of its windows: b's second round at 100 µs.
    closed_window(tmp_path, "007-b-r2", 10_000, (1.0,))
    closed_window(tmp_path, "008-a-r2", 2000, (1.0,))  # a: 10,000 and 2,000: 6,000
    two = measure_dearest(tmp_path, {**keys, "007-b-r2": "b", "008-a-r2": "a"})
    assert (two.key, two.rps) == ("a", pytest.approx(6000))
    assert two.windows["007-b-r2"] == pytest.approx(10_000)
    with pytest.raises(CalibrationFailed, match="no closed-loop window"):
        measure_dearest(tmp_path, {"003-c-r1": "c"})


def test_the_dearest_is_read_once_and_a_resumed_run_keeps_the_recorded_one(
    tmp_path: Path
) -> None:
    suite = parse_suite('name = "t"\n[defaults]\nrate = ["", "50%dearest"]\n[[matrix]]\n'
                        'mode = ["none", "jwt"]\n', "t.toml")
    run = RunDir.create(tmp_path, suite, {})
    windows = dearest_windows(plan(suite))
    for name, target_s in zip(windows, ((0.5,), (2.0,)), strict=True):
        closed_window(run.path, name, 10_000, target_s)  # 50 and 200 µs a request
    closed, shared = suite.cells[0], suite.cells[2]
    out = io.StringIO()
    rate = DearestRate(run, windows)
    assert rate.of(closed, Progress(4, 0, 1.0, out)) is None  # not a share of it
    got = rate.of(shared, Progress(4, 0, 1.0, out))
    assert not isinstance(got, str) and got is not None and got.rps == pytest.approx(5000)
    assert "the dearest: jwt-memory-HS256-read-u10-n1, 5,000 req/s on one core" in \
        out.getvalue()
    assert "50%dearest = 2,500 req/s" in out.getvalue()
    assert RunDir.open(run.path).metadata()["dearest"]["rps"] == pytest.approx(5000)
    # Resumed: the recorded figure, whatever the windows now on disk say.
    for name in windows:
        (run.cells / name / "cell.json").unlink()
    again = DearestRate(RunDir.open(run.path), windows).of(shared, Progress(4, 0, 1.0, out))
    assert again == got
    # A run with no closed-loop window to read: why, as text, noted once.
    (tmp_path / "empty").mkdir()
    empty = RunDir.create(tmp_path / "empty", suite, {})
    failed = DearestRate(empty, windows)
    reason = failed.of(shared, Progress(4, 0, 1.0, out))
    assert isinstance(reason, str) and reason.startswith("no closed-loop window")
    assert failed.of(shared, Progress(4, 0, 1.0, out)) == reason
    assert out.getvalue().count("no closed-loop window") == 1
    assert empty.metadata()["dearest_failed"] == reason


@pytest.fixture(scope="module")
def windows_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return run(tmp_path_factory.mktemp("rates") / "w", "windows",
               '["", "50%", 200, "50%dearest"]', '["none", "jwt"]')


@pytest.mark.slow
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
    assert len(records) == 8 and all(r["status"] == "ok" for r in records.values())
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



@pytest.mark.slow
def test_a_share_of_the_dearest_is_of_the_first_rounds_lowest_closed_loop_req_s(
    windows_run: tuple[Path, str]
) -> None:
    path, progress = windows_run
    dearest = read_json(path / "metadata.json")["dearest"]
    closed = {p.name: read_json(p / "cell.json") for p in (path / "cells").iterdir()
              if not read_json(p / "cell.json")["cell"]["rate"]}
    assert set(dearest["windows"]) == set(closed)  # the one round's closed-loop windows
    frame = load_run(path)
    cost = frame[frame["endpoint"] == "GET /api/me"].set_index("cell")["server_cpu_us"]
    for name, rps in dearest["windows"].items():  # CPU per request as the analysis reads it
        assert rps == pytest.approx(1e6 / cost[name], rel=1e-6)
    assert dearest["basis"] == CPU_BASIS
    assert dearest["rps"] == min(dearest["windows"].values())
    names = sorted(p.name for p in (path / "cells").iterdir())
    assert names[-2:] == ["007-none-read-u4-n1-at50pctdearest-r1",
                          "008-jwt-memory-HS256-read-u4-n1-at50pctdearest-r1"]
    for name in names[-2:]:
        rate = read_json(path / "cells" / name / "cell.json")["rate"]
        assert rate["spec"] == "50%dearest" and rate["dearest"] == dearest
        assert rate["offered"] == pytest.approx(dearest["rps"] / 2)
    assert f"the dearest: {dearest['key']}, " in progress


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_share_without_a_floor_in_the_suite_gets_a_rig_of_its_own(tmp_path: Path) -> None:
    path, progress = run(tmp_path / "c", "cells", '["25%"]', '["jwt"]')
    calibration = read_json(path / "metadata.json")["calibration"]
    assert calibration["cell_key"] == "none-read-u4-n1" and calibration["capacity_rps"] > 0
    (record,) = [read_json(p / "cell.json") for p in (path / "cells").iterdir()]
    assert record["status"] == "ok", progress
    assert record["rate"]["offered"] == pytest.approx(calibration["capacity_rps"] / 4)
