"""The run folder's own files: written with their format, checked whenever read again."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from analysis.data.formats import UnknownFormat
from authbench.run.rundir import RunDir, list_runs
from authbench.run.suite import parse_suite

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "runs"
SUITE = 'name = "tiny"\n[defaults]\nusers = 2\nduration = 2\n[[matrix]]\nmode = ["none"]\n'


def _rewrite(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of a checked-in run, written before "format" (schema_version 1; cell.json
    with no version)."""
    run = tmp_path / "results" / "tiny"
    shutil.copytree(FIXTURES / "tiny", run)
    return run


def test_a_new_run_and_its_cells_say_their_format(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, parse_suite(SUITE, "tiny.toml"), {})
    metadata = json.loads((run.path / "metadata.json").read_text())
    assert metadata["format"] == "authbench-run/2" and "schema_version" not in metadata
    final = run.finish_cell(run.start_cell("001-none-r1"), "001-none-r1", {"status": "ok"})
    assert json.loads((final / "cell.json").read_text()) == {
        "format": "authbench-cell/2", "status": "ok"}
    assert list_runs(tmp_path)[0]["ok"] == 1


def test_a_run_from_before_the_format_key_opens_and_lists(old_run: Path) -> None:
    run = RunDir.open(old_run)
    assert run.metadata()["run_id"] == "tiny"
    run.update_metadata(status="complete")
    assert json.loads((old_run / "metadata.json").read_text())["schema_version"] == 1
    (listed,) = list_runs(old_run.parent)
    assert (listed["run"], listed["status"], listed["ok"], listed["failed"]) == (
        "tiny", "complete", 6, 1)


def test_metadata_in_an_unknown_format_is_refused_by_name(old_run: Path) -> None:
    path = old_run / "metadata.json"
    _rewrite(path, format="authbench-run/9")
    message = re.escape(f"{path}: format 'authbench-run/9', and this authbench reads "
                        "authbench-run/1 or authbench-run/2")
    with pytest.raises(UnknownFormat, match=message):
        RunDir.open(old_run)
    with pytest.raises(UnknownFormat, match=message):
        RunDir(old_run).metadata()


@pytest.mark.parametrize("file", ["metadata.json", "cells/001-none-read-u10-n1-r1/cell.json"])
def test_list_shows_a_run_it_cannot_read_and_why(old_run: Path, file: str) -> None:
    _rewrite(old_run / file, schema_version=2)
    (listed,) = list_runs(old_run.parent)
    assert listed["status"] == "unreadable"
    assert listed["error"].startswith(f"{old_run / file}: schema_version 2 and no format, "
                                      "and this authbench reads authbench-")
