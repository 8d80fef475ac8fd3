"""What each result file is: `"format": "authbench-<kind>/<n>"`, checked on every read.

Every JSON file authbench writes into a run folder names its kind and version in that
one key. Writers put `KIND.current` there; readers open files with `load_json(path,
KIND)` (or `check_format` on a dict they hold) and refuse any version not in KIND, with
the file, what it holds and what they read: a field that changed meaning would
otherwise give wrong figures without a word.

Older versions stay readable where old run folders exist. metadata.json, revocation.json
and micro.json written before the key carried `"schema_version": 1`, and cell.json no
version at all; such a file reads as the /1 of its kind (/2 is the same content under
"format").

This module imports nothing heavy: the harness checks its own files with it on every
command, `authbench serve` included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNKNOWN = "{path}: {found}, and this authbench reads {reads}"


class UnknownFormat(ValueError):
    """A result file in a format (or version) this authbench does not read."""


@dataclass(frozen=True)
class FileFormat:
    """One kind of result file: the versions readers understand; writers write the newest."""

    kind: str
    versions: tuple[int, ...]
    legacy: int | None = None  # the version of a file from before "format", if any was

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"authbench-{self.kind}/{version}" for version in self.versions)

    @property
    def current(self) -> str:
        """What a writer puts in "format" today."""
        return self.names[-1]


RUN = FileFormat("run", (1, 2), legacy=1)  # metadata.json
CELL = FileFormat("cell", (1, 2), legacy=1)  # cells/*/cell.json
# hdr-*.json, from loadtests/hdr.py; /3 adds open-model load ("service <endpoint>",
# "schedule-lag" and an "open" block).
HDR = FileFormat("hdr", (2, 3))
PROBE = FileFormat("probe", (1,))  # probe-*.json, from loadtests/revocation.py
TIMELINE = FileFormat("timeline", (1,))  # timeline-*.json, from loadtests/timeline.py
REVOCATION_STORAGE = FileFormat("revocation-storage", (1, 2), legacy=1)  # revocation.json
MICRO = FileFormat("micro", (1, 2), legacy=1)  # micro.json
OVERLOAD = FileFormat("overload", (1,))  # bench-overload.json
TARGETS = FileFormat("targets", (1,))  # bench-targets.json
STORE_CEILING = FileFormat("store-ceiling", (1,))  # store-ceiling.json (bench-store)
SPEED = FileFormat("speed", (1,))  # speed.json, from authbench/run/speedprobe.py
FORMATS = (RUN, CELL, HDR, PROBE, TIMELINE, REVOCATION_STORAGE, MICRO, OVERLOAD, TARGETS,
           STORE_CEILING, SPEED)


def _found(data: Any) -> str:
    """What a file says it is, in words."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if "format" in data:
        return f"format {data['format']!r}"
    if "schema_version" in data:
        return f"schema_version {data['schema_version']!r} and no format"
    return "no format"


def format_of(data: Any, accepted: FileFormat) -> str | None:
    """The format data is in: its "format", or for a file from before that key
    ("schema_version": 1, or no version), the legacy version of accepted's kind."""
    if not isinstance(data, dict):
        return None
    if "format" in data:
        return str(data["format"])
    if accepted.legacy is not None and data.get("schema_version", 1) == 1:
        return f"authbench-{accepted.kind}/{accepted.legacy}"
    return None


def check_format(path: Path | str, data: Any, accepted: FileFormat) -> str:
    """data's format, when accepted reads it; UnknownFormat naming path otherwise."""
    found = format_of(data, accepted)
    if found is None or found not in accepted.names:
        raise UnknownFormat(UNKNOWN.format(path=path, found=_found(data),
                                           reads=" or ".join(accepted.names)))
    return found


def load_json(path: Path, accepted: FileFormat) -> dict[str, Any]:
    """A result file's JSON, refused (UnknownFormat) unless accepted reads its format."""
    data = json.loads(path.read_text())
    check_format(path, data, accepted)
    result: dict[str, Any] = data
    return result
