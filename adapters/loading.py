"""Read an adapter file: TOML, variants merged over the top level, every error one line.

A file describes the API once at its top level; each `[[variants]]` names a
configuration (its `env`, what `kind` it is) and may override any section, merged key
by key over the top level. A file without variants is one variant, "default", of its
top-level `kind`.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.schema import Adapter

VARIANT_KEYS = ("name", "kind", "store", "env")
TWINS = Path(__file__).resolve().parent / "twins.toml"


class AdapterError(ValueError):
    """An adapter file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class AdapterFile:
    """A checked adapter file: one Adapter per variant, in the file's order."""

    path: Path
    text: str
    variants: tuple[Adapter, ...]

    @property
    def name(self) -> str:
        return self.variants[0].name

    def variant(self, name: str) -> Adapter:
        for adapter in self.variants:
            if adapter.variant.name == name:
                return adapter
        known = ", ".join(a.variant.name for a in self.variants)
        raise AdapterError(f"{self.path}: no variant {name!r}; variants: {known}")


def merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, tables merged key by key (a list replaces a list)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def _reason(exc: ValidationError) -> str:
    """The first error as `key: why` (key dotted, list items by index)."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    if error["type"] == "missing":
        return f"{key}: missing"
    reason = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("model_type", "dataclass_type"):
        reason = "expected a table"
    shown = error.get("input")
    if isinstance(shown, str | int | float | bool) and error["type"] != "missing":
        return f"{key} = {shown!r}: {reason}"
    return f"{key}: {reason}"


def _read_users(users: Mapping[str, Any], folder: Path, source: str) -> dict[str, Any]:
    """A users `file` read into a `list` (so a Locust worker needs no file)."""
    if not isinstance(users.get("file"), str) or not users["file"]:
        return dict(users)
    path = folder / users["file"]
    try:
        with path.open(newline="") as handle:
            rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
    except OSError as exc:
        raise AdapterError(f"{source}: users.file = {users['file']!r}: cannot read "
                           f"{path}: {exc.strerror}") from None
    accounts = []
    for number, row in enumerate(rows, 1):
        if len(row) != 2 or not row[0]:
            raise AdapterError(f"{source}: users.file = {users['file']!r}: line {number} is "
                               "not `username,password`")
        accounts.append({"username": row[0], "password": row[1]})
    if not accounts:
        raise AdapterError(f"{source}: users.file = {users['file']!r}: no users in it")
    return {**{k: v for k, v in users.items() if k != "file"}, "list": accounts}


def parse_adapter(text: str, source: str, folder: Path) -> tuple[Adapter, ...]:
    """Check an adapter file's text; AdapterError names `source` and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AdapterError(f"{source}: not valid TOML: {exc}") from None
    variants = data.pop("variants", None)
    top_variant = {k: data.pop(k) for k in ("kind", "store") if k in data}
    has_variants = variants is not None
    if variants is None:
        variants = [{"name": "default", **top_variant}]
    if not isinstance(variants, list) or not variants or \
            not all(isinstance(v, dict) for v in variants):
        raise AdapterError(f"{source}: variants must be [[variants]] tables")
    built: list[Adapter] = []
    for number, variant in enumerate(variants, 1):
        label = variant.get("name", f"#{number}")
        where = f"{source} [[variants]] {label!r}" if has_variants else source
        own = {k: v for k, v in variant.items() if k in VARIANT_KEYS}
        overrides = {k: v for k, v in variant.items() if k not in VARIANT_KEYS}
        whole = merged(data, overrides)
        whole["variant"] = {**top_variant, **own}
        if isinstance(whole.get("users"), Mapping):
            whole["users"] = _read_users(whole["users"], folder, where)
        service = whole.get("service")
        if isinstance(service, Mapping):  # its cwd (default ".") is beside the adapter file
            cwd = service.get("cwd", ".")
            if isinstance(cwd, str):
                whole["service"] = {**service, "cwd": str((folder / cwd).resolve())}
        try:
            built.append(Adapter.model_validate(whole))
        except ValidationError as exc:
            raise AdapterError(f"{where}: {_reason(exc)}") from None
    names = [a.variant.name for a in built]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise AdapterError(f"{source}: two variants named {twice[0]!r}")
    return tuple(built)


def load_adapter(path: str | Path) -> AdapterFile:
    """An adapter file by path, checked; AdapterError with one line otherwise."""
    file = Path(path)
    if not file.is_file():
        raise AdapterError(f"{file}: no such adapter file")
    text = file.read_text()
    return AdapterFile(file, text, parse_adapter(text, str(file), file.resolve().parent))


def twins_adapter() -> Adapter:
    """The twin targets' own contract, as the built-in scenarios drive it."""
    return load_adapter(TWINS).variants[0]


def adapter_from_json(text: str) -> Adapter:
    """An adapter as the runner hands it to Locust (Adapter.model_dump_json(by_alias=True))."""
    return Adapter.model_validate_json(text)
