"""results/<run-id>/: a self-describing run folder, written atomically, resumable.

Layout:
    metadata.json            format, machine, versions, suite, start/end, topology
    suite.toml               the suite text as it ran
    cells/<NNN>-<key>-r<R>/  one folder per finished cell (renamed into place when done)
        cell.json            the cell's configuration, status (ok / failed + reason), target
                             environment, topology, verify checks, node and store metrics
        locust_*.csv, locust.html, locust.log, hdr-*.json, node-*.log, haproxy.cfg
Unfinished cells live in cells/.<name>.partial/ and are removed on resume. A cell whose
window is short (a Locust worker's data never came) is measured again on resume; the
short one moves to short/<name>.<n>/ when its successor is finished.
metadata.json and cell.json carry "format" (analysis.data.formats RUN, CELL) and are checked
whenever this module reads them.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import psutil
from cryptography.hazmat.backends.openssl import backend as openssl_backend

from analysis.data.formats import CELL, RUN, UnknownFormat, load_json
from authbench.run.cell import Cell
from authbench.run.suite import Suite

PACKAGES = ("authbench", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "PyJWT",
            "cryptography", "redis", "hiredis", "asyncpg", "orjson", "locust", "hdrhistogram",
            "pandas", "matplotlib")
Collector = Callable[[], Any]


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(partial, path)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- metadata: small named collectors in one registry (as pyperf does) ---------------

def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _packages() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _openssl() -> dict[str, str]:
    return {"python_ssl": ssl.OPENSSL_VERSION,
            "cryptography": openssl_backend.openssl_version_text()}


def _memory_bytes() -> int:
    return int(psutil.virtual_memory().total)


METADATA: dict[str, Collector] = {
    "git_commit": _git_commit,
    "python": lambda: sys.version.split()[0],
    "platform": platform.platform,
    "hostname": platform.node,
    "cpu_model": _cpu_model,
    "cpu_count": os.cpu_count,
    "memory_bytes": _memory_bytes,
    "packages": _packages,
    "openssl": _openssl,
    "tools": lambda: {t: shutil.which(t) for t in ("haproxy", "wrk", "redis-server")},
}


def collect_metadata() -> dict[str, Any]:
    """Run every collector; a failing one records its error instead of stopping the run."""
    found: dict[str, Any] = {}
    for name, collect in METADATA.items():
        try:
            found[name] = collect()
        except Exception as exc:
            found[name] = f"unavailable: {exc}"
    return found


# --- the run folder ------------------------------------------------------------------

def cell_folder_name(index: int, cell: Cell, repeat: int) -> str:
    """cells/<NNN>-<key>-r<R>: the order it ran in, what it is, which repeat."""
    return f"{index:03d}-{cell.key}-r{repeat}"


class RunDir:
    """One run's folder under results/."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cells = path / "cells"

    @classmethod
    def create(cls, results: Path, suite: Suite, extra: dict[str, Any]) -> RunDir:
        """A new run folder named <UTC time>-<suite>, with its metadata."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = results / f"{stamp}-{suite.name}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = results / f"{stamp}-{suite.name}-{suffix}"
        run = cls(path)
        run.cells.mkdir(parents=True)
        (path / "suite.toml").write_text(suite.source)
        write_json(path / "metadata.json", {
            "format": RUN.current,
            "run_id": path.name,
            "suite": {"name": suite.name, "description": suite.description,
                      "repeats": suite.repeats, "cells": [c.as_dict() for c in suite.cells],
                      "skipped": list(suite.skipped), "only": list(suite.only)},
            "started": now_iso(),
            "ended": None,
            "status": "running",
            "machine": collect_metadata(),
            **extra,
        })
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        """An existing run (for --resume); UnknownFormat when its metadata.json is in a
        format this authbench does not read."""
        if not (path / "metadata.json").is_file():
            raise FileNotFoundError(f"{path}: not an authbench run (no metadata.json)")
        run = cls(path)
        run.metadata()
        return run

    def metadata(self) -> dict[str, Any]:
        """metadata.json, checked: UnknownFormat when this authbench does not read it."""
        return load_json(self.path / "metadata.json", RUN)

    def update_metadata(self, **changes: Any) -> None:
        """Change fields of metadata.json; the file keeps its own format."""
        data = self.metadata()
        data.update(changes)
        write_json(self.path / "metadata.json", data)

    def finished_cells(self) -> set[str]:
        """Names of cells whose folders are complete (failed cells count: they ran; short
        ones do not: a worker's data never came)."""
        if not self.cells.is_dir():
            return set()
        return {p.name for p in self.cells.iterdir()
                if p.is_dir() and not p.name.startswith(".") and (p / "cell.json").is_file()
                and load_json(p / "cell.json", CELL).get("status") != "short"}

    def start_cell(self, name: str) -> Path:
        """A fresh scratch folder for a cell; whatever a broken run left there goes."""
        scratch = self.cells / f".{name}.partial"
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        return scratch

    def finish_cell(self, scratch: Path, name: str, record: dict[str, Any]) -> Path:
        """Write cell.json last, then move the folder into place in one rename."""
        write_json(scratch / "cell.json", {"format": CELL.current, **record})
        final = self.cells / name
        if final.is_dir():  # a short window measured again: the short one is kept aside
            kept = self.path / "short"
            kept.mkdir(exist_ok=True)
            os.replace(final, kept / f"{name}.{len(list(kept.glob(f'{name}.*'))) + 1}")
        os.replace(scratch, final)
        return final

    def drop_partials(self) -> None:
        for scratch in self.cells.glob(".*.partial"):
            shutil.rmtree(scratch, ignore_errors=True)


def list_runs(results: Path) -> list[dict[str, Any]]:
    """Every run under results/, newest first, with its suite and cell counts. A run with
    a file this authbench does not read is "unreadable", the reason in "error"."""
    runs: list[dict[str, Any]] = []
    if not results.is_dir():
        return runs
    for path in sorted(results.iterdir(), reverse=True):
        if not (path / "metadata.json").is_file():
            continue
        try:
            runs.append(_run_summary(RunDir(path)))
        except UnknownFormat as exc:
            runs.append({"run": path.name, "suite": "", "status": "unreadable", "started": None,
                         "ended": None, "planned": 0, "ok": 0, "failed": 0, "error": str(exc)})
        except (OSError, json.JSONDecodeError):
            continue
    return runs


def _run_summary(run: RunDir) -> dict[str, Any]:
    meta = run.metadata()
    statuses = [load_json(run.cells / name / "cell.json", CELL).get("status")
                for name in run.finished_cells()]
    planned = len(meta["suite"]["cells"]) * meta["suite"]["repeats"]
    return {
        "run": run.path.name, "suite": meta["suite"]["name"], "status": meta.get("status"),
        "started": meta.get("started"), "ended": meta.get("ended"), "planned": planned,
        "ok": statuses.count("ok"), "failed": statuses.count("failed"),
    }
