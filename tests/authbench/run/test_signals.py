"""SIGTERM and SIGHUP stop a run as Ctrl-C does; no process the runner started outlives it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from authbench.infra.children import StopOnSignals, Stopped, release_dead_terminal
from authbench.infra.haproxy import haproxy_path
from tests.support import is_gone, wait_for

ROOT = Path(__file__).resolve().parents[3]
# The first cell finishes and must be kept; the second is interrupted while it measures,
# with every kind of process up: two nodes, HAProxy, a Locust master and a worker.
SUITE = """name = "signals"
[defaults]
users = 1
duration = 2
warmup = 1

[[matrix]]
mode = "none"

[[matrix]]
mode = "jwt"
nodes = 2
workers = 1
"""
FIRST_CELL = "001-none-read-u1-n1-r1"
SECOND_CELL = "002-jwt-memory-HS256-read-u1-n2-w1-r1"




def command_lines(processes: list[psutil.Process]) -> list[str]:
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):  # exited (or a zombie) meanwhile
            lines.append(" ".join(process.cmdline()))
    return lines


def read_json(path: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads(path.read_text())
    return result


@pytest.mark.parametrize("signals", [
    (signal.SIGTERM,),  # `timeout`, `docker stop`, a cancelled CI job
    (signal.SIGHUP, signal.SIGTERM),  # a closed SSH session, then a second signal mid-clean-up
], ids=["SIGTERM", "SIGHUP-then-SIGTERM"])
@pytest.mark.slow  # a real suite run, stopped and resumed
def test_a_signal_stops_the_run_like_ctrl_c(tmp_path: Path,
                                           signals: tuple[signal.Signals, ...]) -> None:
    results = tmp_path / "results"
    suite = tmp_path / "signals.toml"
    suite.write_text(SUITE)
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # Its own session: the signal reaches the runner alone, as from `kill` or `timeout`.
        runner = subprocess.Popen(
            [sys.executable, "-m", "authbench", "run", str(suite), "--results", str(results)],
            cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
    started: list[psutil.Process] = []
    try:
        def second_cell_measuring() -> bool:
            assert runner.poll() is None, err_path.read_text()
            started[:] = psutil.Process(runner.pid).children(recursive=True)
            lines = command_lines(started)
            return (any(results.glob(f"*/cells/{FIRST_CELL}"))
                    and sum("-m locust " in line for line in lines) == 2  # master, worker
                    and sum("-m authbench serve " in line for line in lines) == 2
                    and (haproxy_path() is None or any("haproxy" in line for line in lines)))

        wait_for(second_cell_measuring, 60, "the second cell to measure")
        for signum in signals:
            runner.send_signal(signum)
        assert runner.wait(30) == 128 + signals[0]
        survivors = [p for p in started if not is_gone(p)]
        assert survivors == [], command_lines(survivors)
    finally:  # a failed test leaves nothing running either
        if runner.poll() is None:
            runner.kill()
        runner.wait(10)
        for process in started:
            if not is_gone(process):
                process.kill()

    err_text = err_path.read_text()
    [run] = list(results.iterdir())
    assert f"authbench run --resume {run}" in err_text
    assert "Traceback" not in err_text
    if len(signals) > 1:
        assert "SIGTERM again" in err_text
    meta = read_json(run / "metadata.json")
    assert meta["status"] == "interrupted" and meta["ended"]
    assert sorted(p.name for p in (run / "cells").iterdir()) == [FIRST_CELL]

    done = subprocess.run([sys.executable, "-m", "authbench", "run", "--resume", str(run)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert read_json(run / "metadata.json")["status"] == "complete"
    assert sorted(p.name for p in (run / "cells").iterdir()) == [FIRST_CELL, SECOND_CELL]
    for name in (FIRST_CELL, SECOND_CELL):
        record = read_json(run / "cells" / name / "cell.json")
        assert record["status"] == "ok", record["reason"]
    assert done.returncode == 0, done.stderr


def test_a_target_stops_when_its_parent_is_killed(tmp_path: Path) -> None:
    # A SIGKILLed runner runs no clean-up: the target must notice by itself.
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path\n"
         "from authbench.infra.launcher import TargetProcess\n"
         "target = TargetProcess({'AUTH_MODE': 'none'}, log_path=Path(sys.argv[1]))\n"
         "target.start(); target.wait_ready(); print(target.pid, flush=True)\n"
         "sys.stdin.read()",
         str(tmp_path / "target.log")],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdin is not None
    target: psutil.Process | None = None
    try:
        target = psutil.Process(int(parent.stdout.readline()))
        parent.kill()
        parent.wait(10)
        wait_for(lambda: is_gone(target), 10, "the orphaned target to exit")
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdin.close()
        parent.stdout.close()
        if target is not None and not is_gone(target):
            target.kill()


def test_stop_on_signals_stops_its_children_and_restores_the_handlers() -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("something else handles SIGTERM in this process")
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        stopping = StopOnSignals()
        with pytest.raises(Stopped), stopping:
            child = subprocess.Popen(["sleep", "60"])
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal interrupts this at once
        assert stopping.exit_code == 143
        assert not psutil.pid_exists(child.pid)  # stopped and reaped
        child.wait(1)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGHUP, previous_hup)


def test_a_hung_up_terminal_is_swapped_for_dev_null() -> None:
    master, terminal = os.openpty()
    reader, pipe = os.pipe()
    try:
        os.close(master)  # the SSH session closed: writing to its terminal fails with EIO
        with pytest.raises(OSError):
            os.write(terminal, b"x")
        release_dead_terminal((terminal, pipe))
        assert os.write(terminal, b"x") == 1  # now /dev/null
        os.write(pipe, b"kept")
        assert os.read(reader, 4) == b"kept"  # a working output is left alone
    finally:
        for fd in (terminal, reader, pipe):
            os.close(fd)
