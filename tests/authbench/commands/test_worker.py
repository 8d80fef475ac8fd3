"""`authbench worker`: one line and exit 2 for a bad --master, one line when the master
runs another authbench, and the master's settings and scenario for the Locust worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from authbench.cli import main
from authbench.commands import worker
from authbench.infra.ports import LOOPBACK, free_port
from authbench.run.cell import Cell
from authbench.run.locustrun import LocustProcesses
from loadtests import wire

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("master", "says"), [
    ("127.0.0.1", "--master '127.0.0.1': expected HOST:PORT"),
    ("127.0.0.1:70000", "the port must be a number from 0 to 65535"),
    ("127.0.0.1:0", "the master's port cannot be 0"),
    ("no-such-host.invalid:5557", "cannot resolve 'no-such-host.invalid'"),
])
def test_a_bad_master_is_one_line_and_exit_2(master: str, says: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--master", master]) == 2
    err = capsys.readouterr().err
    assert err.startswith("authbench worker: --master ") and says in err
    assert err.count("\n") == 1


def test_no_master_answering_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["worker", "--master", f"{LOOPBACK}:{port}", "--wait", "1"]) == 1
    assert capsys.readouterr().err == (f"authbench worker: no authbench master answered at "
                                       f"{LOOPBACK}:{port} within 1 s\n")


def test_the_worker_runs_the_masters_scenario_with_its_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the adapter's copy goes here
    welcome = {"version": wire.authbench_version(), "scenario": "read.py",
               "env": {"AUTHBENCH_MODE": "jwt", "AUTHBENCH_SEED_USERS": "50"},
               "api": '{"name": "x"}'}
    command, env = worker.worker_command("10.0.0.1", 5557, welcome,
                                         {"PATH": "/bin", "AUTHBENCH_CONTROL": "/x/c.json"})
    assert command[1:] == ["-m", "locust", "-f", str(worker.LOADTESTS / "read.py"), "--worker",
                           "--master-host", "10.0.0.1", "--master-port", "5557",
                           "--exit-code-on-error", "0"]
    assert env["AUTHBENCH_CONTROL"] == "remote" and env["AUTHBENCH_MODE"] == "jwt"
    assert env["AUTHBENCH_SEED_USERS"] == "50" and env["PATH"] == "/bin"
    assert Path(env["AUTHBENCH_API"]).parent == tmp_path
    assert Path(env["AUTHBENCH_API"]).read_text() == '{"name": "x"}'
    with pytest.raises(worker.WorkerError, match=r"scenario 'mine\.py', which is not in"):
        worker.worker_command("h", 1, {**welcome, "scenario": "mine.py"}, {})


@pytest.mark.slow  # a real Locust master
def test_a_worker_of_another_version_is_refused_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    cell = Cell(mode="none", scenario="floor", users=1, duration=1, warmup=0)
    master = LocustProcesses(cell, f"http://{LOOPBACK}:9", tmp_path, 60, external_workers=1,
                             master_bind_port=port)
    # This worker's authbench says it is another version; everything else is the same.
    other = ("import sys; from loadtests import wire; "
             "wire.authbench_version = lambda: '0.0.0-other'; "
             "from authbench.commands.worker import main; "
             f"sys.exit(main(['--master', '{LOOPBACK}:{port}', '--wait', '20']))")
    try:
        master.start()
        done = subprocess.run([sys.executable, "-c", other], cwd=ROOT, capture_output=True,
                              text=True, timeout=40, check=False)
    finally:
        master.stop()
    assert done.returncode == 1
    assert done.stderr == (f"authbench worker: master runs authbench "
                           f"{wire.authbench_version()}, this worker runs 0.0.0-other\n")


@pytest.mark.slow  # a real Locust master and worker
def test_a_plain_locust_worker_of_another_version_is_refused_too(tmp_path: Path) -> None:
    """A worker started without `authbench worker` says hello from inside Locust; its master
    refuses it, and it quits with the same line."""
    other = tmp_path / "other-version"
    other.mkdir()
    (other / "sitecustomize.py").write_text(
        "from importlib import metadata\n_version = metadata.version\n"
        "metadata.version = lambda name: '0.0.0-other' if name == 'authbench' "
        "else _version(name)\n")
    port = free_port()
    cell = Cell(mode="none", scenario="floor", users=1, duration=1, warmup=0)
    master = LocustProcesses(cell, f"http://{LOOPBACK}:9", tmp_path / "master", 60,
                             external_workers=1, master_bind_port=port)
    try:
        master.start()
        done = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(worker.LOADTESTS / "floor.py"),
             "--worker", "--master-host", LOOPBACK, "--master-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=40, check=False,
            env={**os.environ, "AUTHBENCH_CONTROL": wire.REMOTE_CONTROL,
                 "PYTHONPATH": f"{other}{os.pathsep}{ROOT}"})
    finally:
        master.stop()
    assert done.returncode == 1, done.stderr[-2000:]
    line = (f"authbench worker: master runs authbench {wire.authbench_version()}, "
            "this worker runs 0.0.0-other")
    assert line in done.stderr.splitlines()


@pytest.mark.slow  # a real Locust master and worker
def test_failed_requests_are_measured_and_the_worker_still_exits_0(tmp_path: Path) -> None:
    """A worker looped over a run's configurations goes on after one whose requests failed:
    the failures are in the master's file, not in the worker's exit code."""
    port = free_port()
    cell = Cell(mode="none", scenario="floor", users=1, duration=1, warmup=0)
    closed = f"http://{LOOPBACK}:{free_port()}"  # nothing listens: every request fails
    master = LocustProcesses(cell, closed, tmp_path / "master", 60, external_workers=1,
                             master_bind_port=port)
    with (tmp_path / "worker.log").open("wb") as log:
        outside = subprocess.Popen(
            [sys.executable, "-m", "authbench.commands.worker", "--master",
             f"{LOOPBACK}:{port}", "--wait", "30"], cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT)
    try:
        master.start()
        master.wait_ready(30)
        window = master.announce(tmp_path / "window", 0, 1)
        [file] = master.collect(window)
    finally:
        master.stop()
        code = outside.wait(30)
    assert json.loads(file.read_text())["failures"]["GET /noauth"] > 0
    assert code == 0, (tmp_path / "worker.log").read_text()[-2000:]
