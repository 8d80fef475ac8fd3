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


def test_a_short_cell_is_measured_again_and_the_short_one_kept_aside(tmp_path: Path) -> None:
    """A window a Locust worker's data never reached is short: not finished, so --resume
    measures it again; the new folder takes its place, the short one moves to short/."""
    run = RunDir.create(tmp_path, parse_suite(SUITE, "tiny.toml"), {})
    name = "001-none-r1"
    short = run.start_cell(name)
    (short / "hdr-elsewhere-7.json").write_text("{}")
    run.finish_cell(short, name, {"status": "short", "reason": "short window 1: worker ..."})
    run.finish_cell(run.start_cell("002-none-r2"), "002-none-r2", {"status": "failed"})
    assert run.finished_cells() == {"002-none-r2"}
    again = run.finish_cell(run.start_cell(name), name, {"status": "ok"})
    assert json.loads((again / "cell.json").read_text())["status"] == "ok"
    assert not (again / "hdr-elsewhere-7.json").exists()
    kept = run.path / "short" / f"{name}.1"
    assert json.loads((kept / "cell.json").read_text())["status"] == "short"
    assert (kept / "hdr-elsewhere-7.json").exists()
    assert run.finished_cells() == {name, "002-none-r2"}
