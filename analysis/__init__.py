"""Analysis over results/: pure functions from raw run files to tables, charts and reports."""

from analysis.hdr import load_cell_histograms, merge, percentiles
from analysis.load import load_run
from analysis.summary import summarize_run

__all__ = ["load_cell_histograms", "load_run", "merge", "percentiles", "summarize_run"]
