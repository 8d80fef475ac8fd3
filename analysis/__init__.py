"""Analysis over results/: pure functions from raw run files to tables, charts and reports."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.hdr import load_cell_histograms, merge, percentiles
    from analysis.load import load_run
    from analysis.summary import summarize_run

# Loaded when first used: the harness imports analysis.formats on every command,
# `authbench serve` included, and pandas and matplotlib take about a second.
_EXPORTS = {"load_cell_histograms": "analysis.hdr", "merge": "analysis.hdr",
            "percentiles": "analysis.hdr", "load_run": "analysis.load",
            "summarize_run": "analysis.summary"}
__all__ = ["load_cell_histograms", "load_run", "merge", "percentiles", "summarize_run"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
