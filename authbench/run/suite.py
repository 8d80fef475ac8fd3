"""Suites as data: a TOML matrix expanded into cells, checked before anything starts.

A suite file has a name, `[defaults]`, one or more `[[matrix]]` blocks, and optional
`extras`: measurements run once after the cells (EXTRAS). Every
key in a block may be one value or a list; a block expands to the cartesian
product of its lists, over the defaults. A block may name services it `requires`
("redis", "postgres"): it is skipped, with a note, when they do not answer.

Each value is checked by the Cell itself (a pydantic dataclass: types, choices, bounds,
no unknown keys); an error names the file, the block and the key.

`interleave = "windows"` brings every configuration up once and rotates short windows
over them; its revocation and faults cells (which cannot wait between windows) run once
each after the windows, on rigs of their own (authbench.run.runner.plan).

`rate` turns a cell into open-model load: requests per second offered whatever the
answers take (a number), or a share of the floor's capacity measured at the start of
the run ("50%"). A list of rates sweeps them, as any list does.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import field as dataclass_field
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from authbench.run.cell import (
    OPEN_SCENARIOS,
    SERVICES,
    Cell,
    one_of,
)
from targets.settings import revocation_store


class SuiteError(ValueError):
    """A suite file that cannot run; the message names the file and the key."""


CELL_KEYS = tuple(f.name for f in fields(Cell))
# "cells": a rig per cell; "windows": every configuration up at once, windows interleaved.
INTERLEAVES = ("cells", "windows")
# Scenarios whose users can wait at the gate between windows without changing what is
# measured (a revocation probe's trials run across window boundaries). In a windows suite
# a cell of another scenario runs once, on a rig of its own, after the windows.
WINDOWED_SCENARIOS = ("read", "floor", "login", "lifecycle")
# Measurements a suite may add after its cells, each writing its own file in the run.
EXTRAS = ("revocation-storage", "store-ceiling")
BLOCK_EXTRA = {"requires"}


@dataclass(frozen=True, config=ConfigDict(arbitrary_types_allowed=True))
class Suite:
    """A named list of cells, each run `repeats` times, interleaved."""

    name: str
    description: str
    repeats: int
    cells: tuple[Cell, ...]
    skipped: tuple[str, ...] = ()  # why blocks were left out (missing services)
    source: str = ""
    extras: tuple[str, ...] = ()  # EXTRAS run after the cells
    interleave: str = "cells"  # INTERLEAVES
    api: str = ""  # an adapter file: the suite's load drives that API (authbench.run.apisuite)
    only: tuple[str, ...] = ()  # --only's filters, when they left cells out


def _error(where: str, key: str, value: Any, exc: ValidationError) -> SuiteError:
    reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
    return SuiteError(f"{where}: {key} = {value!r}: {reason}")


def _check_value(where: str, key: str, value: Any) -> Any:
    """The value as the cell keeps it; SuiteError naming where, the key and why."""
    if key not in CELL_KEYS:
        raise SuiteError(f"{where}: unknown key {key!r}; known keys: {', '.join(CELL_KEYS)}")
    try:
        return getattr(Cell(**{key: value}), key)
    except ValidationError as exc:
        raise _error(where, key, value, exc) from None


def _expand(where: str, base: Mapping[str, Any], block: Mapping[str, Any]) -> list[Cell]:
    merged = {**base, **{k: v for k, v in block.items() if k not in BLOCK_EXTRA}}
    axes: list[list[tuple[str, Any]]] = []
    for key, value in merged.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise SuiteError(f"{where}: {key} is an empty list")
        axes.append([(key, _check_value(where, key, v)) for v in values])
    cells = []
    for combination in itertools.product(*axes):
        cell = Cell(**dict(combination))
        if cell.mode == "none":
            cell = replace(cell, store="memory", revocation="none", verify_cache=0, scale=0,
                           lib="pyjwt", access_ttl=0)
        if cell.mode == "session":
            cell = replace(cell, revocation="none", verify_cache=0, lib="pyjwt", access_ttl=0)
        if cell.scenario != "revocation":
            cell = replace(cell, logout="one")
        needed = revocation_store(cell.revocation)
        if needed is not None and cell.store != needed:
            raise SuiteError(f"{where}: revocation = \"{cell.revocation}\" propagates through "
                             f"{needed}; it needs store = \"{needed}\", not {cell.store!r}")
        if cell.nodes == 1:
            cell = replace(cell, balance="roundrobin")  # one node: nothing to balance
        _check_fault(where, cell)
        _check_store_rtt(where, cell)
        if cell.rate and cell.scenario not in OPEN_SCENARIOS:
            raise SuiteError(f"{where}: rate = {cell.rate!r} sends one request per arrival; "
                             f"scenario {cell.scenario!r} needs a closed loop (rate = \"\"), "
                             f"or use one of {', '.join(OPEN_SCENARIOS)}")
        cells.append(cell)
    return cells


def _check_store_rtt(where: str, cell: Cell) -> None:
    """A round trip delays a network store; a cell that never waits for one is a control."""
    if not cell.store_rtt_ms or cell.store in SERVICES:
        return
    if cell.mode == "none" or (cell.mode == "jwt" and cell.revocation == "none"):
        return  # nothing to delay: the flat line the delayed modes are read against
    raise SuiteError(f"{where}: store_rtt_ms = {cell.store_rtt_ms:g} delays the way to a "
                     f"Redis or PostgreSQL store; store = {cell.store!r} lives in each "
                     "target's memory: use store = \"redis\" or \"postgres\", or "
                     "store_rtt_ms = 0")


def _check_fault(where: str, cell: Cell) -> None:
    """A fault needs what it breaks: the store it names, a second node to keep serving."""
    if cell.fault.startswith("redis-") and cell.store != "redis":
        raise SuiteError(f"{where}: fault = {cell.fault!r} breaks a Redis of the cell's own; "
                         f"it needs store = \"redis\", not {cell.store!r}")
    if cell.fault == "postgres-terminate" and cell.store != "postgres":
        raise SuiteError(f"{where}: fault = \"postgres-terminate\" needs store = \"postgres\", "
                         f"not {cell.store!r}")
    if cell.fault == "node-kill" and cell.nodes < 2:
        raise SuiteError(f"{where}: fault = \"node-kill\" kills one node of several; "
                         "it needs nodes >= 2")


@dataclass(config=ConfigDict(strict=True, extra="forbid"))
class SuiteFile:
    """A suite file's top level, as TOML gives it (the blocks are checked cell by cell)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    matrix: Annotated[list[dict[str, Any]], Field(min_length=1)]
    description: str = ""
    repeats: Annotated[int, Field(ge=1, le=100)] = 1
    interleave: Annotated[str, AfterValidator(one_of(INTERLEAVES))] = "cells"
    defaults: dict[str, Any] = dataclass_field(default_factory=dict)
    extras: list[Annotated[str, AfterValidator(one_of(EXTRAS))]] = dataclass_field(
        default_factory=list)
    api: str = ""  # an adapter file, relative to the suite file


def _top_level_reason(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "unexpected_keyword_argument":
        known = ", ".join(sorted(f.name for f in fields(SuiteFile)))
        return f"unknown top-level key {key!r}; known: {known}"
    if key == "matrix" and error["type"] in ("missing", "too_short"):
        return "needs at least one [[matrix]] block"
    reason = error["msg"].removeprefix("Value error, ")
    if key == "name":
        reason = "must be a lower-case word (a-z, 0-9, - and _)"
    if error["type"] == "missing":
        return f"{key}: missing"
    return f"{key} = {error['input']!r}: {reason}"


def parse_suite(text: str, source: str, available: Iterable[str] = SERVICES) -> Suite:
    """Parse and check a suite's TOML text; leave out blocks whose services are missing."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source}: not valid TOML: {exc}") from None
    try:
        top = SuiteFile(**data)
    except ValidationError as exc:
        raise SuiteError(f"{source}: {_top_level_reason(exc)}") from None
    name, repeats, defaults = top.name, top.repeats, top.defaults
    for key, value in defaults.items():
        for one in value if isinstance(value, list) else [value]:
            _check_value(f"{source} [defaults]", key, one)
    blocks = top.matrix
    present = set(available)
    cells: list[Cell] = []
    skipped: list[str] = []
    for number, block in enumerate(blocks, 1):
        where = f"{source} [[matrix]] #{number}"
        requires = block.get("requires", [])
        if not isinstance(requires, list) or not all(r in SERVICES for r in requires):
            raise SuiteError(f"{where}: requires must list some of {', '.join(SERVICES)}")
        expanded = _expand(where, defaults, block)
        missing = (set(requires) | set().union(*(c.needs() for c in expanded))) - present
        if missing:
            skipped.append(f"{where}: {len(expanded)} cell(s) left out, "
                           f"{' and '.join(sorted(missing))} not reachable")
            continue
        cells += [c for c in dict.fromkeys(expanded) if c not in cells]  # each cell once
    if not cells:
        raise SuiteError(f"{source}: no cell can run here ({'; '.join(skipped)})")
    _check_unique_keys(source, cells)
    extras, interleave = top.extras, top.interleave
    if interleave == "windows":
        for cell in cells:
            _check_windowed(source, cell)
    return Suite(name, top.description, repeats, tuple(cells),
                 tuple(skipped), text, tuple(extras), interleave, top.api)


def _check_windowed(source: str, cell: Cell) -> None:
    """In a windows suite, a cell of a scenario that cannot wait between windows (revocation
    probes, faults) runs once, on a rig of its own, after the windows; what would share a
    rig must not break it."""
    if cell.scenario not in WINDOWED_SCENARIOS:
        return
    if cell.fault != "none":
        raise SuiteError(f"{source}: interleave = \"windows\" shares a rig between windows; "
                         f"fault {cell.fault!r} of {cell.key} needs scenario = \"faults\" "
                         "(a rig of its own, after the windows) or interleave = \"cells\"")


def _check_unique_keys(source: str, cells: list[Cell]) -> None:
    """Repeats share a key and analysis groups by it: two different cells must not."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(cell.key, cell)
        if other != cell:
            differ = [f.name for f in fields(Cell)
                      if getattr(cell, f.name) != getattr(other, f.name)]
            raise SuiteError(f"{source}: two cells named {cell.key} differ only in "
                             f"{', '.join(differ)}; put them in separate suites")


def builtin_suites() -> list[str]:
    """Names of the suites shipped with authbench."""
    folder = resources.files("authbench.run") / "suites"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                  if p.name.endswith(".toml"))


def load_suite(name_or_path: str, available: Iterable[str] = SERVICES) -> Suite:
    """A shipped suite by name (builtin_suites) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file")
        suite = parse_suite(path.read_text(), str(path), available)
        if suite.api:  # as the file names it: beside the suite file
            suite = replace(suite, api=str(path.parent / suite.api))
        return suite
    shipped = resources.files("authbench.run") / "suites" / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise SuiteError(f"unknown suite {name_or_path!r}: shipped suites are "
                         f"{', '.join(builtin_suites())}, or give a path to a .toml file")
    return parse_suite(shipped.read_text(), f"suites/{name_or_path}.toml", available)


def apply_only(suite: Suite, filters: Iterable[str]) -> Suite:
    """Keep the cells matching every key=value (a value may be a,b for either)."""
    cells = list(suite.cells)
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or key not in CELL_KEYS:
            raise SuiteError(f"--only {item!r}: expected key=value with a key among "
                             f"{', '.join(CELL_KEYS)}")
        wanted = {str(_check_value("--only", key, _coerce(v))) for v in value.split(",")}
        cells = [c for c in cells if str(getattr(c, key)) in wanted]
    if not cells:
        raise SuiteError(f"--only {' '.join(filters)}: no cell of suite {suite.name} matches")
    if len(cells) == len(suite.cells):
        return suite
    return replace(suite, cells=tuple(cells), only=(*suite.only, *filters))


def _coerce(value: str) -> Any:
    """A command-line value as TOML would have it: a number when it reads as one."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
