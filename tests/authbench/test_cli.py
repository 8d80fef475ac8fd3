"""The CLI's clear errors and the seed command, against real stores."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

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
