"""The CLI's clear errors and the seed command, against real stores."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from authbench.cli import main
from targets.settings import Settings
from targets.stores import make_store
from tests.support import drop_namespace, unique_namespace


def test_serve_refuses_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--port", str(port)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"port {port}" in err and "in use" in err


def test_serve_names_the_bad_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_ALG", "none")
    assert main(["serve", "--port", "1"]) == 2
    assert "JWT_ALG='none'" in capsys.readouterr().err


def test_unknown_mode_flag_is_rejected_by_argparse() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "authbench", "serve", "--mode", "cookies"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode == 2
    assert "invalid choice: 'cookies'" in done.stderr


def test_seed_memory_store_explains_what_to_do_instead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["seed", "--store", "memory", "--sessions", "10"]) == 2
    assert "SEED_SESSIONS" in capsys.readouterr().err


@pytest.mark.parametrize("store", ["redis", "postgres"])
def test_seed_puts_sessions_in_the_shared_store(
    store: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = request.getfixturevalue("redis_url" if store == "redis" else "postgres_url")
    env = {"STORE": store, "STORE_URL": url, "STORE_NAMESPACE": unique_namespace()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        assert main(["seed", "--sessions", "2500"]) == 0
        assert f"seeded 2,500 sessions into {store}" in capsys.readouterr().out

        async def count() -> int:
            target_store = make_store(Settings.from_env(env))
            await target_store.open()
            try:
                return await target_store.count_sessions()
            finally:
                await target_store.close()

        assert asyncio.run(count()) == 2500
    finally:
        drop_namespace(env)


def test_seed_reports_an_unreachable_store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound but not listening: connections are refused
        monkeypatch.setenv("STORE_URL", f"redis://127.0.0.1:{port}/0")
        monkeypatch.delenv("STORE", raising=False)
        code = main(["seed", "--store", "redis", "--sessions", "10"])
    assert code == 2
    assert "not reachable" in capsys.readouterr().err
    # --store applied to the seeding only: targets started later by the same process
    # (the test suite, a notebook) must not find STORE=redis in their environment.
    assert "STORE" not in os.environ


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs"
NEWER = ("{path}: format 'authbench-run/9', and this authbench reads authbench-run/1 or "
         "authbench-run/2")


@pytest.fixture
def newer_run(tmp_path: Path) -> Path:
    """A run whose metadata.json is in a format this authbench does not know."""
    run = tmp_path / "results" / "newer"
    shutil.copytree(FIXTURES / "tiny", run)
    meta = run / "metadata.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": "authbench-run/9"}))
    return run


@pytest.mark.parametrize("args", [["compare", "{run}", str(FIXTURES / "tiny")],
                                  ["recommend", "{run}", "--p99-ms", "10", "--rps", "1"],
                                  ["report", "{run}"], ["run", "--resume", "{run}"]],
                         ids=["compare", "recommend", "report", "resume"])
def test_a_run_in_an_unknown_format_is_refused_in_one_line(
        newer_run: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([arg.format(run=newer_run) for arg in args]) == 2
    path = newer_run / "metadata.json"
    assert capsys.readouterr().err == f"authbench {args[0]}: {NEWER.format(path=path)}\n"


def test_list_shows_a_run_in_an_unknown_format_and_why(
        newer_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--results", str(newer_run.parent)]) == 0
    out, err = capsys.readouterr()
    assert "newer" in out and "unreadable" in out
    assert err == f"note: {NEWER.format(path=newer_run / 'metadata.json')}\n"


def test_report_refuses_a_micro_json_in_an_unknown_format(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "micro.json").write_text(json.dumps({"format": "authbench-micro/9"}))
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"authbench report: {tmp_path / 'micro.json'}: format 'authbench-micro/9', and this "
        "authbench reads authbench-micro/1 or authbench-micro/2\n")


def test_the_command_line_loads_no_pandas() -> None:
    # `authbench serve` starts once per target: the format checks must not pull in the
    # analysis's pandas and matplotlib.
    done = subprocess.run([sys.executable, "-c", "import sys, authbench.cli; "
                           "print(sorted({'pandas', 'matplotlib'} & set(sys.modules)))"],
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout == "[]\n"


@pytest.mark.parametrize("command", ["bench-targets", "bench-locust", "bench-overload"])
def test_a_missing_wrk_is_one_line_and_leaves_nothing(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no wrk here
    extra = ["--results", str(tmp_path / "results")] if command != "bench-locust" else []
    assert main([command, *extra]) == 2
    assert capsys.readouterr().err == (
        f"authbench {command}: wrk is not installed (Debian/Ubuntu: apt-get install wrk)\n")
    assert not (tmp_path / "results").exists()


def test_a_missing_h2load_stops_bench_overload_before_it_measures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed")
    only_wrk = tmp_path / "bin"
    only_wrk.mkdir()
    (only_wrk / "wrk").symlink_to(wrk)
    monkeypatch.setenv("PATH", str(only_wrk))
    assert main(["bench-overload", "--results", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err == ("authbench bench-overload: h2load is not installed "
                                       "(Debian/Ubuntu: apt-get install nghttp2-client)\n")
    assert not (tmp_path / "results").exists()
