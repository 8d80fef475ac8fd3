"""One convention for result files: "format", checked; old files read as the /1 of their kind."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from analysis.data.formats import (
    CELL,
    FORMATS,
    HDR,
    PROBE,
    RUN,
    TIMELINE,
    UnknownFormat,
    check_format,
    load_json,
)

ROOT = Path(__file__).resolve().parents[3]


def test_each_kind_names_its_versions_and_writes_the_newest() -> None:
    assert RUN.names == ("authbench-run/1", "authbench-run/2")
    assert RUN.current == "authbench-run/2"
    assert HDR.current == "authbench-hdr/3"
    assert len({kind.kind for kind in FORMATS}) == len(FORMATS)


@pytest.mark.parametrize(("data", "found"), [
    ({"format": "authbench-run/2"}, "authbench-run/2"),
    ({"format": "authbench-run/1"}, "authbench-run/1"),
    ({"schema_version": 1}, "authbench-run/1"),  # metadata.json before the key
    ({}, "authbench-run/1"),
])
def test_a_known_format_is_read(data: dict[str, Any], found: str) -> None:
    assert check_format("metadata.json", data, RUN) == found


def test_a_cell_record_without_any_version_is_the_first() -> None:
    assert check_format("cell.json", {"status": "ok"}, CELL) == "authbench-cell/1"


@pytest.mark.parametrize(("data", "accepted", "found"), [
    ({"format": "authbench-run/3"}, RUN, "format 'authbench-run/3'"),
    ({"format": "authbench-cell/2"}, RUN, "format 'authbench-cell/2'"),
    ({"schema_version": 2}, RUN, "schema_version 2 and no format"),
    ({"histograms": {}}, HDR, "no format"),  # no legacy: a file must say what it is
    ([1, 2], PROBE, "a JSON list, not an object"),
])
def test_anything_else_is_refused_naming_the_file_what_it_holds_and_what_is_read(
        data: Any, accepted: Any, found: str) -> None:
    with pytest.raises(UnknownFormat) as refused:
        check_format("run/x.json", data, accepted)
    reads = " or ".join(accepted.names)
    assert str(refused.value) == f"run/x.json: {found}, and this authbench reads {reads}"


def test_load_json_checks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "timeline-h-1.json"
    path.write_text(json.dumps({"format": "authbench-timeline/1", "seconds": []}))
    assert load_json(path, TIMELINE)["seconds"] == []
    path.write_text(json.dumps({"format": "authbench-timeline/2", "seconds": []}))
    with pytest.raises(UnknownFormat, match=f"^{path}: format 'authbench-timeline/2'"):
        load_json(path, TIMELINE)


def _file_format(module: str) -> str:
    """A locustfile module's FILE_FORMAT, read from its source (importing it would bring
    in Locust and gevent)."""
    tree = ast.parse((ROOT / "loadtests" / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "FILE_FORMAT" for t in node.targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, str)
            return value
    raise AssertionError(f"loadtests/{module}.py has no FILE_FORMAT")


@pytest.mark.parametrize(("module", "accepted"), [("hdr", HDR), ("revocation", PROBE),
                                                  ("timeline", TIMELINE)])
def test_the_locustfiles_write_what_the_analysis_reads(module: str, accepted: Any) -> None:
    assert _file_format(module) == accepted.current
