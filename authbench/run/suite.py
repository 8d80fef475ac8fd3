"""Suites as data: a TOML matrix expanded into cells, checked before anything starts.

A suite file has a name, `[defaults]`, one or more `[[matrix]]` blocks, and optional
`extras`: measurements run once after the cells (EXTRAS). Every
key in a block may be one value or a list; a block expands to the cartesian
product of its lists, over the defaults. A block may name services it `requires`
("redis", "postgres"): it is skipped, with a note, when they do not answer.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from targets.settings import AUTH_MODES, JWT_ALGORITHMS, JWT_LIBRARIES, REVOCATIONS, STORE_KINDS

SCENARIOS = ("read", "login", "lifecycle", "floor", "revocation", "faults")
LOGOUTS = ("one", "all")  # revocation scenario: log out one credential, or everywhere
BALANCES = ("roundrobin", "sticky")
# Store and node faults injected inside a measured window (authbench/run/faults.py).
FAULTS = ("none", "redis-restart", "redis-restart-empty", "redis-slow", "postgres-terminate",
          "node-kill")
SERVICES = ("redis", "postgres")


class SuiteError(ValueError):
    """A suite file that cannot run; the message names the file and the key."""


@dataclass(frozen=True)
class Cell:
    """One measured configuration: what runs, with how much load, for how long."""

    mode: str = "jwt"
    store: str = "memory"
    alg: str = "HS256"
    lib: str = "pyjwt"  # JWT_LIB: the JWT library of the targets
    revocation: str = "none"
    verify_cache: int = 0
    scenario: str = "read"
    users: int = 10
    spawn_rate: float = 0.0  # users per second; 0: all at once
    nodes: int = 1
    workers: int = 0  # Locust worker processes; 0: one local process
    scale: int = 0  # live sessions seeded into the store before the run
    duration: float = 10.0
    warmup: float = 2.0
    balance: str = "roundrobin"
    logout: str = "one"  # revocation scenario: "all" logs out everywhere (per-user cutoff)
    access_ttl: int = 0  # ACCESS_TTL of the targets; 0: the targets' default
    fault: str = "none"  # FAULTS: what fails during the measured window

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
        return "-".join(parts)

    def needs(self) -> set[str]:
        """The services this cell cannot run without."""
        return {self.store} & set(SERVICES)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CELL_KEYS = {f.name: f.type for f in fields(Cell)}
SUITE_KEYS = {"name", "description", "repeats", "interleave", "defaults", "matrix", "extras"}
# "cells": a rig per cell; "windows": every configuration up at once, windows interleaved.
INTERLEAVES = ("cells", "windows")
# Scenarios whose users can wait at the gate between windows without changing what is
# measured (a revocation probe's trials run across window boundaries).
WINDOWED_SCENARIOS = ("read", "floor", "login", "lifecycle")
# Measurements a suite may add after its cells, each writing its own file in the run.
EXTRAS = ("revocation-storage",)
BLOCK_EXTRA = {"requires"}
_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": AUTH_MODES, "store": STORE_KINDS, "alg": JWT_ALGORITHMS, "lib": JWT_LIBRARIES,
    "revocation": REVOCATIONS, "scenario": SCENARIOS, "balance": BALANCES, "logout": LOGOUTS,
    "fault": FAULTS,
}
_LIMITS: dict[str, tuple[float, float]] = {
    "users": (1, 100_000), "nodes": (1, 64), "workers": (0, 64), "scale": (0, 100_000_000),
    "duration": (1, 86_400), "warmup": (0, 3_600), "verify_cache": (0, 10_000_000),
    "spawn_rate": (0, 100_000), "access_ttl": (0, 31_536_000),
}


@dataclass(frozen=True)
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


def _check_value(where: str, key: str, value: Any) -> Any:
    if key not in CELL_KEYS:
        raise SuiteError(f"{where}: unknown key {key!r}; known keys: {', '.join(CELL_KEYS)}")
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise SuiteError(f"{where}: {key} = {value!r}; expected one of "
                             f"{', '.join(_CHOICES[key])}")
        return value
    number_type = float if key in ("duration", "warmup", "spawn_rate") else int
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SuiteError(f"{where}: {key} = {value!r}; expected a number")
    if number_type is int and not float(value).is_integer():
        raise SuiteError(f"{where}: {key} = {value!r}; expected a whole number")
    low, high = _LIMITS[key]
    if not low <= value <= high:
        raise SuiteError(f"{where}: {key} = {value!r}; must be between {low:g} and {high:g}")
    return number_type(value)


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
        if cell.revocation == "pubsub" and cell.store != "redis":
            raise SuiteError(f"{where}: revocation = \"pubsub\" propagates through Redis; "
                             f"it needs store = \"redis\", not {cell.store!r}")
        if cell.nodes == 1:
            cell = replace(cell, balance="roundrobin")  # one node: nothing to balance
        _check_fault(where, cell)
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


def parse_suite(text: str, source: str, available: Iterable[str] = SERVICES) -> Suite:
    """Parse and check a suite's TOML text; leave out blocks whose services are missing."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - SUITE_KEYS
    if unknown:
        raise SuiteError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(SUITE_KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        raise SuiteError(f"{source}: name must be a lower-case word, got {name!r}")
    repeats = data.get("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or not 1 <= repeats <= 100:
        raise SuiteError(f"{source}: repeats must be a whole number from 1 to 100")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise SuiteError(f"{source}: [defaults] must be a table")
    for key, value in defaults.items():
        for one in value if isinstance(value, list) else [value]:
            _check_value(f"{source} [defaults]", key, one)
    blocks = data.get("matrix")
    if not isinstance(blocks, list) or not blocks:
        raise SuiteError(f"{source}: needs at least one [[matrix]] block")
    present = set(available)
    cells: list[Cell] = []
    skipped: list[str] = []
    for number, block in enumerate(blocks, 1):
        where = f"{source} [[matrix]] #{number}"
        if not isinstance(block, dict):
            raise SuiteError(f"{where}: must be a table")
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
    extras = data.get("extras", [])
    if not isinstance(extras, list) or not all(e in EXTRAS for e in extras):
        raise SuiteError(f"{source}: extras must list some of {', '.join(EXTRAS)}")
    interleave = data.get("interleave", "cells")
    if interleave not in INTERLEAVES:
        raise SuiteError(f"{source}: interleave = {interleave!r}; expected one of "
                         f"{', '.join(INTERLEAVES)}")
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
    return Suite(name, str(data.get("description", "")), repeats, tuple(cells),
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
        wanted = {str(_check_value("--only", key, _coerce(key, v))) for v in value.split(",")}
        cells = [c for c in cells if str(getattr(c, key)) in wanted]
    if not cells:
        raise SuiteError(f"--only {' '.join(filters)}: no cell of suite {suite.name} matches")
    return replace(suite, cells=tuple(cells))


def _coerce(key: str, value: str) -> Any:
    if key in _CHOICES:
        return value
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        raise SuiteError(f"--only {key}={value!r}: expected a number") from None
