"""Analysis over results/: pure functions from raw run files to tables, charts and reports."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.data.hdr import load_cell_histograms, merge, percentiles
    from analysis.data.load import load_run
    from analysis.report.summary import summarize_run

# Loaded when first used: the harness imports analysis.data.formats on every command,
# `authbench serve` included, and pandas and matplotlib take about a second.
_EXPORTS = {"load_cell_histograms": "analysis.data.hdr", "merge": "analysis.data.hdr",
            "percentiles": "analysis.data.hdr", "load_run": "analysis.data.load",
            "summarize_run": "analysis.report.summary"}
__all__ = ["load_cell_histograms", "load_run", "merge", "percentiles", "summarize_run"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
