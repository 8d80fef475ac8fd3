"""Starting and stopping real target processes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authbench.infra.launcher import TargetFailed, TargetProcess
from tests.support import FAST_KDF


def test_target_starts_answers_and_stops(tmp_path: Path) -> None:
    target = TargetProcess({**FAST_KDF, "AUTH_MODE": "session"}, log_path=tmp_path / "t.log")
    with target:
        assert target.is_alive()
        health = httpx.get(f"{target.url}/health").json()
        assert health["auth_mode"] == "session"
        assert health["pid"] == target.pid
    assert not target.is_alive()
    assert target.process is not None and target.process.returncode is not None


def test_bad_configuration_fails_fast_with_the_reason(tmp_path: Path) -> None:
    target = TargetProcess({"AUTH_MODE": "cookies"}, log_path=tmp_path / "t.log")
    with pytest.raises(TargetFailed) as failure:
        target.__enter__()
    assert "AUTH_MODE='cookies'" in str(failure.value)
    assert not target.is_alive()


def test_a_target_that_dies_is_noticed(tmp_path: Path) -> None:
    with TargetProcess({**FAST_KDF, "AUTH_MODE": "jwt"}, log_path=tmp_path / "t.log") as target:
        assert target.process is not None
        target.process.kill()
        target.process.wait(10)
        assert not target.is_alive()
        with pytest.raises(TargetFailed, match="exited"):
            target.wait_ready(timeout=5)
