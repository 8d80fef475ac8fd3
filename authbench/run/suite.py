"""Suites as data: a TOML matrix expanded into cells, checked before anything starts.

A suite file has a name, `[defaults]`, one or more `[[matrix]]` blocks, and optional
`extras`: measurements run once after the cells (EXTRAS). Every
key in a block may be one value or a list; a block expands to the cartesian
product of its lists, over the defaults. A block may name services it `requires`
("redis", "postgres"): it is skipped, with a note, when they do not answer.

Each value is checked by the Cell itself (a pydantic dataclass: types, choices, bounds,
no unknown keys); an error names the file, the block and the key.

`rate` turns a cell into open-model load: requests per second offered whatever the
answers take (a number), or a share of the floor's capacity measured at the start of
the run ("50%"). A list of rates sweeps them, as any list does.
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, fields, replace
from dataclasses import field as dataclass_field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from targets.settings import (
    AUTH_MODES,
    JWT_ALGORITHMS,
    JWT_LIBRARIES,
    REVOCATIONS,
    STORE_KINDS,
    revocation_store,
)

SCENARIOS = ("read", "login", "lifecycle", "floor", "revocation", "faults")
LOGOUTS = ("one", "all")  # revocation scenario: log out one credential, or everywhere
BALANCES = ("roundrobin", "sticky")
# Store and node faults injected inside a measured window (authbench/run/faults.py).
FAULTS = ("none", "redis-restart", "redis-restart-empty", "redis-slow", "postgres-terminate",
          "node-kill")
SERVICES = ("redis", "postgres")
# Scenarios whose every task sends one request: each arrival of a rate is one request.
OPEN_SCENARIOS = ("read", "floor")


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value
    return check


Mode = Annotated[str, AfterValidator(_one_of(AUTH_MODES))]
Store = Annotated[str, AfterValidator(_one_of(STORE_KINDS))]
Alg = Annotated[str, AfterValidator(_one_of(JWT_ALGORITHMS))]
Lib = Annotated[str, AfterValidator(_one_of(JWT_LIBRARIES))]
Revocation = Annotated[str, AfterValidator(_one_of(REVOCATIONS))]
Scenario = Annotated[str, AfterValidator(_one_of(SCENARIOS))]
Balance = Annotated[str, AfterValidator(_one_of(BALANCES))]
Logout = Annotated[str, AfterValidator(_one_of(LOGOUTS))]
Fault = Annotated[str, AfterValidator(_one_of(FAULTS))]


class SuiteError(ValueError):
    """A suite file that cannot run; the message names the file and the key."""


@dataclass(frozen=True, config=ConfigDict(strict=True, extra="forbid"))
class Cell:
    """One measured configuration: what runs, with how much load, for how long."""

    mode: Mode = "jwt"
    store: Store = "memory"
    alg: Alg = "HS256"
    lib: Lib = "pyjwt"  # JWT_LIB: the JWT library of the targets
    revocation: Revocation = "none"
    verify_cache: Annotated[int, Field(ge=0, le=10_000_000)] = 0
    scenario: Scenario = "read"
    # Under a rate, the users are the bound on requests in flight.
    users: Annotated[int, Field(ge=1, le=100_000)] = 10
    spawn_rate: Annotated[float, Field(ge=0, le=100_000)] = 0.0  # users per second; 0: all at once
    nodes: Annotated[int, Field(ge=1, le=64)] = 1
    workers: Annotated[int, Field(ge=0, le=64)] = 0  # Locust worker processes; 0: one local process
    # Live sessions seeded into the store before the run.
    scale: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    duration: Annotated[float, Field(ge=1, le=86_400)] = 10.0
    warmup: Annotated[float, Field(ge=0, le=3_600)] = 2.0
    balance: Balance = "roundrobin"
    logout: Logout = "one"  # revocation scenario: "all" logs out everywhere
    access_ttl: Annotated[int, Field(ge=0, le=31_536_000)] = 0  # targets' ACCESS_TTL; 0: default
    fault: Fault = "none"  # FAULTS: what fails during the measured window
    rate: str = ""  # "": closed loop; "500": req/s offered; "50%": of the floor's capacity

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        """A number (req/s) or "N%", kept as text: "500", "50%" ("" is the closed loop)."""
        if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
            return value
        text = str(value).strip()
        number, percent = (text[:-1], "%") if text.endswith("%") else (text, "")
        try:
            amount = float(number)
        except ValueError:
            raise ValueError("expected requests per second (a number) or a share of the "
                             "floor's capacity such as \"50%\"") from None
        if not 0 < amount <= (1000 if percent else 10_000_000):
            raise ValueError("must be above 0 (and a share at most 1000%, a rate at most "
                             "10,000,000 req/s)")
        return f"{amount:g}{percent}"

    @property
    def rate_fraction(self) -> float | None:
        """The rate as a share of the floor's capacity ("50%" -> 0.5), else None."""
        return float(self.rate[:-1]) / 100 if self.rate.endswith("%") else None

    def offered_rate(self, floor_capacity: float | None) -> float:
        """Requests per second this cell offers (0: closed loop)."""
        if not self.rate:
            return 0.0
        fraction = self.rate_fraction
        if fraction is None:
            return float(self.rate)
        if floor_capacity is None:
            raise ValueError(f"rate {self.rate} needs the floor's capacity measured first")
        return fraction * floor_capacity

    @property
    def config(self) -> Cell:
        """The cell without its rate: what runs, whatever load it is offered."""
        return replace(self, rate="")

    @property
    def key(self) -> str:
        """A readable, unique name for the configuration (repeats share it)."""
        parts = [self.mode]
        if self.mode != "none":
            parts.append(self.store)
        if self.mode in ("jwt", "hybrid"):
            parts.append(self.alg)
            if self.lib != "pyjwt":
                parts.append(self.lib)
            if self.revocation != "none":
                parts.append(self.revocation)
            if self.verify_cache:
                parts.append(f"cache{self.verify_cache}")
            if self.access_ttl:
                parts.append(f"ttl{self.access_ttl}")
        parts.append(self.scenario)
        if self.logout != "one":
            parts.append(f"logout{self.logout}")
        parts += [f"u{self.users}", f"n{self.nodes}"]
        if self.spawn_rate:
            parts.append(f"r{self.spawn_rate:g}")
        if self.workers:
            parts.append(f"w{self.workers}")
        if self.scale:
            parts.append(f"s{self.scale}")
        if self.nodes > 1 and self.balance != "roundrobin":
            parts.append(self.balance)
        if self.fault != "none":
            parts.append(self.fault)
        if self.rate:
            parts.append("at" + self.rate.replace("%", "pct"))
        return "-".join(parts)

    def needs(self) -> set[str]:
        """The services this cell cannot run without."""
        return {self.store} & set(SERVICES)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CELL_KEYS = tuple(f.name for f in fields(Cell))
# "cells": a rig per cell; "windows": every configuration up at once, windows interleaved.
INTERLEAVES = ("cells", "windows")
# Scenarios whose users can wait at the gate between windows without changing what is
# measured (a revocation probe's trials run across window boundaries).
WINDOWED_SCENARIOS = ("read", "floor", "login", "lifecycle")
# Measurements a suite may add after its cells, each writing its own file in the run.
EXTRAS = ("revocation-storage",)
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
        if cell.rate and cell.scenario not in OPEN_SCENARIOS:
            raise SuiteError(f"{where}: rate = {cell.rate!r} sends one request per arrival; "
                             f"scenario {cell.scenario!r} needs a closed loop (rate = \"\"), "
                             f"or use one of {', '.join(OPEN_SCENARIOS)}")
        cells.append(cell)
    return cells


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
    interleave: Annotated[str, AfterValidator(_one_of(INTERLEAVES))] = "cells"
    defaults: dict[str, Any] = dataclass_field(default_factory=dict)
    extras: list[Annotated[str, AfterValidator(_one_of(EXTRAS))]] = dataclass_field(
        default_factory=list)


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
            if cell.scenario not in WINDOWED_SCENARIOS:
                raise SuiteError(f"{source}: interleave = \"windows\" keeps users waiting "
                                 f"between windows; scenario {cell.scenario!r} of {cell.key} "
                                 "needs interleave = \"cells\"")
            if cell.fault != "none":
                raise SuiteError(f"{source}: interleave = \"windows\" shares a rig between "
                                 f"windows; fault {cell.fault!r} of {cell.key} needs "
                                 "interleave = \"cells\" (a rig of its own)")
    return Suite(name, top.description, repeats, tuple(cells),
                 tuple(skipped), text, tuple(extras), interleave)


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
    """A shipped suite by name (quick, standard, scale, nodes) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file")
        return parse_suite(path.read_text(), str(path), available)
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
    return replace(suite, cells=tuple(cells))


def _coerce(value: str) -> Any:
    """A command-line value as TOML would have it: a number when it reads as one."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
