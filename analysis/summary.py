"""A run's summary table: one row per cell, from its Locust CSV and HDR files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from analysis.hdr import load_cell_histograms, percentiles

HOT_PATH = "GET /api/me"


def locust_row(path: Path, name: str) -> dict[str, str] | None:
    """The row of a Locust stats CSV for one request name (or "Aggregated")."""
    if not path.exists():
        return None
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == name:
                return row
    return None


def summarize_cell(folder: Path) -> dict[str, Any]:
    """Status, throughput and exact latency of one finished cell."""
    cell = json.loads((folder / "cell.json").read_text())
    row: dict[str, Any] = {"cell": folder.name, "status": cell["status"],
                           "reason": cell.get("reason", "")}
    if cell["status"] != "ok":
        return row
    total = locust_row(folder / "locust_stats.csv", "Aggregated")
    if total is not None:
        row["requests"] = int(total["Request Count"])
        row["failures"] = int(total["Failure Count"])
        row["rps"] = float(total["Requests/s"])
    histograms, failures = load_cell_histograms(folder)
    name = HOT_PATH if HOT_PATH in histograms else "GET /noauth"
    if name in histograms:
        row["endpoint"] = name
        row.update(percentiles(histograms[name]))
        row["hot_failures"] = failures.get(name, 0)
    return row


def summarize_run(run: Path) -> list[dict[str, Any]]:
    """Every finished cell of a run, in the order they ran."""
    cells = run / "cells"
    return [summarize_cell(p) for p in sorted(cells.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / "cell.json").exists()]


def format_summary(rows: list[dict[str, Any]]) -> list[str]:
    """The table as text lines (renderers return lines; the CLI prints them)."""
    lines = [f"{'cell':<48}{'status':>8}{'req/s':>9}{'fail':>6}{'p50 ms':>8}{'p99 ms':>8}"
             f"{'p99.9':>8}{'max ms':>8}"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['cell']:<48}{r['status']:>8}  {r['reason'][:70]}")
            continue
        lines.append(
            f"{r['cell']:<48}{'ok':>8}{r.get('rps', 0):>9.0f}{r.get('failures', 0):>6}"
            f"{r.get('p50_ms', float('nan')):>8.1f}{r.get('p99_ms', float('nan')):>8.1f}"
            f"{r.get('p99.9_ms', float('nan')):>8.1f}{r.get('max_ms', float('nan')):>8.1f}"
        )
    return lines
