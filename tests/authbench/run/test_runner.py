"""The suite runner end to end: real targets, real Locust, tiny cells (a few seconds each)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest

from analysis.report.summary import summarize_run
from analysis.report.writer import write_report
from authbench.bench.revocation import measure as revocation_measure
from authbench.bench.revocation.measure import storage_extra
from authbench.bench.revocation.result import RevocationBenchConfig
from authbench.cli import main
from authbench.infra.haproxy import haproxy_path
from authbench.run.rundir import RunDir
from authbench.run.runner import RunOptions, run_suite
from authbench.run.suite import SERVICES, Suite, load_suite
from tests.conftest import StartTarget
from tests.support import closed_port, is_gone, read_json, wait_for

ROOT = Path(__file__).resolve().parents[3]
TINY = "[defaults]\nusers = 2\nduration = 2\nwarmup = 1\n"
TWO_CELLS = 'name = "tiny"\n' + TINY + '[[matrix]]\nmode = ["session", "jwt"]\n'
SESSION_CELL = "001-session-memory-read-u2-n1-r1"
JWT_CELL = "002-jwt-memory-HS256-read-u2-n1-r1"
LOCUST_FILES = ("locust_stats.csv", "locust_stats_history.csv", "locust.html", "locust.stdout")


def write_suite(folder: Path, text: str, name: str = "suite.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def tiny_suite(folder: Path, text: str) -> Suite:
    return load_suite(str(write_suite(folder, text)), SERVICES)


def cell_names(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "cells").iterdir())




@pytest.fixture(scope="module")
def complete_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One finished two-cell run (session, jwt), shared by the tests that only read it."""
    folder = tmp_path_factory.mktemp("complete")
    out = io.StringIO()
    suite = tiny_suite(folder, TWO_CELLS)
    run = run_suite(suite, RunOptions(results=folder / "results", out=out))
    return run.path, out.getvalue()


# --- (a) a complete run ------------------------------------------------------------------

@pytest.mark.slow  # a real suite run
def test_a_complete_run_keeps_metadata_and_raw_results(complete_run: tuple[Path, str]) -> None:
    run, progress = complete_run
    meta = read_json(run / "metadata.json")
    assert meta["format"] == "authbench-run/2" and "schema_version" not in meta
    assert meta["run_id"] == run.name and run.name.endswith("-tiny")
    assert meta["status"] == "complete"
    assert meta["started"] and meta["ended"] and meta["started"] <= meta["ended"]
    machine = meta["machine"]
    if (ROOT / ".git").exists():
        commit = machine["git_commit"]
        assert len(commit.removesuffix("-dirty")) == 40
        int(commit[:40], 16)
    assert machine["packages"]["PyJWT"] and machine["packages"]["locust"]
    assert "OpenSSL" in machine["openssl"]["python_ssl"]
    assert machine["cpu_model"] and not machine["cpu_model"].startswith("unavailable")
    assert isinstance(machine["cpu_count"], int) and machine["cpu_count"] >= 1
    assert meta["suite"]["name"] == "tiny" and meta["suite"]["repeats"] == 1
    assert [c["mode"] for c in meta["suite"]["cells"]] == ["session", "jwt"]
    balancer = "haproxy" if haproxy_path() else "client-side"
    assert meta["topology"] == {"load_balancer": balancer, "external_workers": 0}
    assert (run / "suite.toml").read_text() == TWO_CELLS
    assert cell_names(run) == [SESSION_CELL, JWT_CELL]
    assert "[1/2] " + SESSION_CELL in progress and "[2/2] " + JWT_CELL in progress
    assert "FAILED" not in progress

    for name, mode in ((SESSION_CELL, "session"), (JWT_CELL, "jwt")):
        folder = run / "cells" / name
        cell = read_json(folder / "cell.json")
        assert cell["status"] == "ok", cell["reason"]
        assert cell["format"] == "authbench-cell/2"
        assert cell["name"] == name and cell["reason"] == ""
        assert cell["cell"]["mode"] == mode and cell["cell"]["users"] == 2
        assert cell["started"] <= cell["ended"]
        assert [v["is_passed"] for v in cell["verify"]] == [True]
        assert cell["verify"][0]["mode"] == mode
        assert cell["topology"]["kind"] == "single"
        for file in LOCUST_FILES:
            assert (folder / file).stat().st_size > 0, file
        assert list(folder.glob("hdr-*.json"))
        assert (folder / "node-1.log").exists()
        [node] = cell["nodes"]
        assert node["pid"] == cell["topology"]["node_pids"][0]
        assert node["cpu_seconds"] > 0 and node["peak_rss_bytes"] > 0
        times = [t for t, _ in node["cpu_timeline"]]
        cpu = [c for _, c in node["cpu_timeline"]]
        assert len(times) > 4 and times == sorted(times) and cpu == sorted(cpu)
        assert cpu[-1] == node["cpu_seconds"]
        assert cell["locust"]["exit_code"] == 0
        command = " ".join(cell["locust"]["command"])
        assert str(folder / "locust") in command and ".partial" not in command
        assert cell["target_env"]["AUTH_MODE"] == mode
    assert (run / "keys" / "HS256").is_dir()  # the JWT cell's shared key

    rows = summarize_run(run)
    assert [r["cell"] for r in rows] == [SESSION_CELL, JWT_CELL]
    for row in rows:
        assert row["status"] == "ok"
        assert row["rps"] > 0 and row["requests"] > 0
        assert row["failures"] == 0
        assert row["endpoint"] == "GET /api/me"
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]


@pytest.mark.slow  # a real suite run
def test_list_shows_the_run_with_its_counts(
    complete_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = complete_run
    assert main(["list", "--results", str(run.parent)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "suite", "status", "ok", "failed", "planned"]
    assert lines[1].split() == [run.name, "tiny", "complete", "2", "0", "2"]


def test_list_of_an_empty_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["list", "--results", str(tmp_path / "none")]) == 0
    assert "no runs under" in capsys.readouterr().out


# --- (b) resume ---------------------------------------------------------------------------

@pytest.mark.slow  # a real suite run
def test_resume_runs_only_the_missing_cell(complete_run: tuple[Path, str], tmp_path: Path) -> None:
    original, _ = complete_run
    run = tmp_path / "results" / original.name
    shutil.copytree(original, run)
    kept = read_json(run / "cells" / SESSION_CELL / "cell.json")
    dropped = read_json(run / "cells" / JWT_CELL / "cell.json")
    # A broken run: the second cell never finished, its scratch folder was left behind.
    shutil.rmtree(run / "cells" / JWT_CELL)
    scratch = run / "cells" / f".{JWT_CELL}.partial"
    scratch.mkdir()
    (scratch / "locust.stdout").write_text("half a run")
    (run / "cells" / ".009-x.partial").mkdir()
    meta = read_json(run / "metadata.json")
    meta["status"] = "interrupted"
    (run / "metadata.json").write_text(json.dumps(meta))

    out = io.StringIO()
    suite = load_suite(str(run / "suite.toml"), SERVICES)
    resumed = run_suite(suite, RunOptions(results=tmp_path / "results", out=out),
                        resume=RunDir.open(run))

    assert resumed.path == run
    assert cell_names(run) == [SESSION_CELL, JWT_CELL]  # no partial folder left
    assert read_json(run / "cells" / SESSION_CELL / "cell.json") == kept
    again = read_json(run / "cells" / JWT_CELL / "cell.json")
    assert again["status"] == "ok", again["reason"]
    assert again["started"] != dropped["started"]
    assert "half a run" not in (run / "cells" / JWT_CELL / "locust.stdout").read_text()
    progress = out.getvalue()
    assert f"[2/2] {JWT_CELL}" in progress and SESSION_CELL not in progress
    meta = read_json(run / "metadata.json")
    assert meta["status"] == "complete" and meta["resumed"]
    assert [r["status"] for r in summarize_run(run)] == ["ok", "ok"]


def test_resume_refuses_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--resume", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an authbench run" in err


@pytest.mark.slow  # a real suite run
def test_resume_keeps_the_runs_plan(
    complete_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = complete_run
    assert main(["run", "--resume", str(run), "--only", "mode=jwt"]) == 2
    assert "--only cannot be combined with --resume" in capsys.readouterr().err


# --- (c) a node that dies in the middle of a cell ----------------------------------------

def serve_children() -> list[psutil.Process]:
    """This test process's `authbench serve` children (the target nodes)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "authbench" in line and " serve " in f"{line} ":
            found.append(child)
    return found


@pytest.mark.slow  # a real suite run
def test_a_node_that_dies_mid_cell_fails_that_cell_only(tmp_path: Path) -> None:
    results = tmp_path / "results"
    suite = tiny_suite(tmp_path, 'name = "dies"\n' + TINY
                       + '[[matrix]]\nmode = "jwt"\nduration = 4\n[[matrix]]\nmode = "none"\n')
    killed: list[int] = []
    problems: list[str] = []

    def kill_first_node() -> None:
        try:
            def measuring() -> bool:
                return any(results.glob("*/cells/.001-*.partial/control.json"))

            wait_for(measuring, 60, "the first cell's measured window")
            time.sleep(1.5)  # into the measured phase
            nodes = serve_children()
            assert len(nodes) == 1, [n.cmdline() for n in nodes]
            nodes[0].kill()
            killed.append(nodes[0].pid)
        except Exception as exc:
            problems.append(repr(exc))

    killer = threading.Thread(target=kill_first_node, daemon=True)
    killer.start()
    run = run_suite(suite, RunOptions(results=results, out=io.StringIO()))
    killer.join(10)
    assert not problems, problems
    dead = read_json(run.path / "cells" / "001-jwt-memory-HS256-read-u2-n1-r1" / "cell.json")
    assert dead["status"] == "failed"
    assert dead["topology"]["node_pids"] == killed
    assert "target died during the cell" in dead["reason"]
    assert f"node 1 (port {dead['topology']['node_urls'][0].rsplit(':', 1)[1]}) exited with " \
           f"code -{signal.SIGKILL.value}" in dead["reason"]
    after = read_json(run.path / "cells" / "002-none-read-u2-n1-r1" / "cell.json")
    assert after["status"] == "ok", after["reason"]
    assert read_json(run.path / "metadata.json")["status"] == "complete"
    assert [r["status"] for r in summarize_run(run.path)] == ["failed", "ok"]
    assert not serve_children()


# --- (d) cells that cannot be measured ---------------------------------------------------

@pytest.mark.slow  # real suite runs
def test_unreachable_store_and_failed_verification_are_recorded_not_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials over 256 bytes are refused unread: an RS256 token (342 bytes of signature
    # alone) is then never accepted, so the JWT target fails its conformance check.
    monkeypatch.setenv("MAX_CREDENTIAL_BYTES", "256")
    port = closed_port()
    suite = tiny_suite(tmp_path, 'name = "broken"\n' + TINY
                       + '[[matrix]]\nmode = "session"\nstore = "redis"\n'
                       + '[[matrix]]\nmode = "jwt"\nalg = "RS256"\n'
                       + '[[matrix]]\nmode = "none"\n')
    out = io.StringIO()
    options = RunOptions(results=tmp_path / "results", redis_url=f"redis://127.0.0.1:{port}/0",
                         out=out)
    run = run_suite(suite, options).path
    names = cell_names(run)
    assert names == ["001-session-redis-read-u2-n1-r1", "002-jwt-memory-RS256-read-u2-n1-r1",
                     "003-none-read-u2-n1-r1"]

    no_store = run / "cells" / names[0]
    record = read_json(no_store / "cell.json")
    assert record["status"] == "failed"
    assert "StoreUnavailable" in record["reason"] and f"127.0.0.1:{port}" in record["reason"]
    assert sorted(p.name for p in no_store.iterdir()) == ["cell.json"]  # nothing started

    unverified = run / "cells" / names[1]
    record = read_json(unverified / "cell.json")
    assert record["status"] == "failed"
    assert record["reason"].startswith("verification failed on http://127.0.0.1:")
    assert "with credential: HTTP 401" in record["reason"]
    assert [v["is_passed"] for v in record["verify"]] == [False]
    assert (unverified / "node-1.log").exists()
    for file in (*LOCUST_FILES, "locust.log"):
        assert not (unverified / file).exists(), file
    assert not list(unverified.glob("hdr-*.json"))
    assert "locust" not in record and "nodes" not in record

    floor = read_json(run / "cells" / names[2] / "cell.json")
    assert floor["status"] == "ok", floor["reason"]
    progress = out.getvalue()
    assert progress.count("FAILED: ") == 2 and "[3/3]" in progress
    assert read_json(run / "metadata.json")["status"] == "complete"


def test_a_target_that_cannot_start_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_LEEWAY", "99")  # the target refuses to start: at most 5
    suite = tiny_suite(tmp_path, 'name = "nostart"\n' + TINY + '[[matrix]]\nmode = "jwt"\n')
    run = run_suite(suite, RunOptions(results=tmp_path / "results", out=io.StringIO())).path
    folder = run / "cells" / "001-jwt-memory-HS256-read-u2-n1-r1"
    record = read_json(folder / "cell.json")
    assert record["status"] == "failed"
    assert "exited with code 2" in record["reason"] and "JWT_LEEWAY" in record["reason"]
    assert sorted(p.name for p in folder.iterdir()) == ["cell.json", "node-1.log"]
    assert not serve_children()


# --- (e) Ctrl-C, then resume -------------------------------------------------------------

@pytest.mark.slow  # a real suite run, stopped and resumed
def test_ctrl_c_keeps_finished_cells_and_resume_finishes_the_run(tmp_path: Path) -> None:
    results = tmp_path / "results"
    # Three cells, of which --only keeps two: resuming must keep the run's plan.
    suite_path = write_suite(tmp_path, 'name = "stop"\n' + TINY
                             + '[[matrix]]\nmode = ["none", "session", "jwt"]\n')
    command = [sys.executable, "-m", "authbench", "run", str(suite_path), "--results",
               str(results), "--only", "mode=session,jwt"]
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # SIGINT back to its default in the child: a shell starts background jobs with it
        # ignored, and Python then never installs its Ctrl-C handler.
        runner = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err,
                                  stdin=subprocess.DEVNULL, start_new_session=True,
                                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        def second_cell_measuring() -> bool:
            assert runner.poll() is None, err_path.read_text()
            return (any(results.glob(f"*/cells/{SESSION_CELL}"))
                    and any(results.glob(f"*/cells/.{JWT_CELL}.partial/locust.stdout")))

        wait_for(second_cell_measuring, 90, "the second cell to start measuring")
        time.sleep(1.0)
        children = psutil.Process(runner.pid).children(recursive=True)
        lines = [" ".join(c.cmdline()) for c in children]
        assert any(" serve " in line for line in lines), lines
        assert any("locust" in line for line in lines), lines
        runner.send_signal(signal.SIGINT)
        assert runner.wait(60) == 130
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait(10)
    err_text = err_path.read_text()
    assert "interrupted" in err_text and "--resume" in err_text
    [run] = list(results.iterdir())
    assert f"run folder: {run}" in err_text
    assert "Traceback" not in err_text
    meta = read_json(run / "metadata.json")
    assert meta["status"] == "interrupted" and meta["ended"]
    assert meta["suite"]["only"] == ["mode=session,jwt"]  # the report says what left cells out
    assert cell_names(run) == [SESSION_CELL]  # the finished cell kept, no .partial left
    first = read_json(run / "cells" / SESSION_CELL / "cell.json")
    assert first["status"] == "ok"
    wait_for(lambda: all(is_gone(c) for c in children), 10,
             "the interrupted run's targets and Locust to exit")

    done = subprocess.run([sys.executable, "-m", "authbench", "run", "--resume", str(run)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert cell_names(run) == [SESSION_CELL, JWT_CELL]
    assert read_json(run / "cells" / SESSION_CELL / "cell.json") == first
    assert f"[2/2] {JWT_CELL}" in done.stderr and SESSION_CELL not in done.stderr
    assert read_json(run / "metadata.json")["status"] == "complete"
    assert read_json(run / "cells" / JWT_CELL / "cell.json")["status"] == "ok"
    assert SESSION_CELL in done.stdout and JWT_CELL in done.stdout  # the summary table


# --- (f) the command line ----------------------------------------------------------------

def test_run_of_a_missing_suite_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.toml"
    assert main(["run", str(missing), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err == f"authbench run: {missing}: no such suite file\n"
    assert not (tmp_path / "results").exists()


def test_run_of_a_bad_suite_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_suite(tmp_path, 'name = "bad"\n[[matrix]]\nmode = "cookies"\n')
    assert main(["run", str(bad), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"authbench run: {bad} [[matrix]] #1: mode = 'cookies'")


def test_run_of_an_unknown_only_key_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "quick", "--only", "colour=red", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--only 'colour=red'" in err


def test_verify_passes_a_real_target(
    start_target: StartTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    target = start_target(AUTH_MODE="session")
    assert main(["verify", target.url]) == 0
    out = capsys.readouterr().out
    assert f"{target.url} (session): PASSED" in out
    assert "[ok] revoked after logout" in out and "FAIL" not in out


class AcceptEverything(BaseHTTPRequestHandler):
    """A 'target' that says yes to every request: a wrong implementation."""

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b'{"status": "ok", "auth_mode": "jwt"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def accepting_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AcceptEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_verify_fails_a_server_that_accepts_anything(
    accepting_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", accepting_server]) == 1
    out = capsys.readouterr().out
    assert f"{accepting_server} (jwt): FAILED" in out
    failed = {line.split("] ", 1)[1].split(":")[0] for line in out.splitlines()
              if line.strip().startswith("[FAIL]")}
    # Its login answers 200 with no credential in it: nothing after login can be checked.
    assert failed == {"no credential", "login", "alg none token"}
    assert "[ok] health" in out


def test_verify_of_nothing_listening(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert main(["verify", url]) == 1
    assert "[FAIL] reachable: ConnectError" in capsys.readouterr().out


# --- (f) the revocation suite's probe cells and its storage extra ------------------------

@pytest.mark.slow  # a real suite run and its extra
def test_a_revocation_run_keeps_probes_and_its_storage_extra(
    tmp_path: Path, redis_url: str
) -> None:
    text = ('name = "revoke"\nextras = ["revocation-storage"]\n'
            '[defaults]\nusers = 4\nduration = 4\nwarmup = 1\nscenario = "revocation"\n'
            '[[matrix]]\nmode = "jwt"\nstore = "redis"\nrevocation = "pubsub"\nnodes = 2\n')
    small = RevocationBenchConfig(stores=("memory", "redis"), max_entries=2000,
                                  checkpoints=(1000, 2000), logout_rate=200, token_ttl=1,
                                  steady_seconds=2, k=(1, 5), reps=2, checks=20)
    out = io.StringIO()
    extras = {"revocation-storage": storage_extra(small)}
    options = RunOptions(results=tmp_path / "results", out=out, redis_url=redis_url,
                         extras=extras)
    run = run_suite(tiny_suite(tmp_path, text), options)
    cell = run.path / "cells" / "001-jwt-redis-HS256-pubsub-revocation-u4-n2-r1"
    assert read_json(cell / "cell.json")["status"] == "ok"
    probes = list(cell.glob("probe-*.json"))
    assert probes and read_json(probes[0])["trials"]
    storage = read_json(run.path / "revocation.json")
    assert {g["store"] for g in storage["growth"]} == {"memory", "redis"}
    assert "blocklist storage" in out.getvalue()
    markdown = write_report(run.path)["markdown"].read_text()
    assert "## Revocation" in markdown and "Blocklist storage" in markdown
    assert "JWT + blocklist in node memory via Redis pub/sub" in markdown
    # A resumed run does not measure the extra again.
    again = io.StringIO()
    run_suite(tiny_suite(tmp_path, text), RunOptions(results=tmp_path / "results", out=again,
                                                     redis_url=redis_url, extras=extras),
              resume=RunDir(run.path))
    assert "revocation-storage: already measured" in again.getvalue()


@pytest.mark.slow  # a real suite run, resumed
def test_a_failed_extra_is_a_warning_and_a_resume_measures_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = ('name = "extra"\nextras = ["revocation-storage"]\n' + TINY
            + '[[matrix]]\nmode = "none"\n')

    def broken(*_: object, **__: object) -> dict[str, Any]:
        raise RuntimeError("the bench broke")

    monkeypatch.setattr(revocation_measure, "run_revocation_bench", broken)
    run = run_suite(tiny_suite(tmp_path, text), RunOptions(
        results=tmp_path / "results", out=io.StringIO(),
        extras={"revocation-storage": storage_extra()}))
    meta = read_json(run.path / "metadata.json")
    assert meta["status"] == "complete"  # the cells were measured
    assert meta["extras_failed"] == {"revocation-storage": "RuntimeError: the bench broke"}
    report = write_report(run.path)["markdown"].read_text()
    assert "the revocation-storage extra failed, so its section is missing" in report
    # A resume measures the extra (small, memory only) and forgets the failure.
    monkeypatch.undo()
    small = RevocationBenchConfig(
        stores=("memory",), max_entries=1000, checkpoints=(1000,), k=(1,), reps=1, checks=5)
    run_suite(tiny_suite(tmp_path, text), RunOptions(
        results=tmp_path / "results", out=io.StringIO(),
        extras={"revocation-storage": storage_extra(small)}),
              resume=RunDir(run.path))
    assert (run.path / "revocation.json").exists()
    assert read_json(run.path / "metadata.json")["extras_failed"] == {}
    assert "extra failed" not in write_report(run.path)["markdown"].read_text()
