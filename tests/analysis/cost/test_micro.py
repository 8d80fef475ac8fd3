"""micro.json as the report reads it: its format checked, old files still read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysis.cost.micro import jwt_table, load_micro
from analysis.data.formats import UnknownFormat

RESULT = {"group": "jwt", "name": "HS256 pyjwt verify", "median_us": 20.0, "stdev_us": 1.0,
          "samples": 4, "loops": 100, "extra": {"token_bytes": 150}}


def _write(folder: Path, **header: Any) -> Path:
    path = folder / "micro.json"
    path.write_text(json.dumps({**header, "started": "2027-01-15T08:00:00+00:00",
                                "config": {}, "machine": {}, "results": [RESULT]}))
    return path


@pytest.mark.parametrize("header", [{"format": "authbench-micro/2"}, {"schema_version": 1}],
                         ids=["current", "before the format key"])
def test_micro_json_reads(tmp_path: Path, header: dict[str, Any]) -> None:
    _, frame = load_micro(_write(tmp_path, **header))
    assert jwt_table(frame).loc["HS256", "pyjwt verify"] == 20.0


def test_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, format="authbench-micro/3")
    with pytest.raises(UnknownFormat, match=f"{path}: format 'authbench-micro/3', and this "
                       "authbench reads authbench-micro/1 or authbench-micro/2"):
        load_micro(path)
