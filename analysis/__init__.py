"""Analysis over results/: pure functions from raw run files to tables (and, later, charts)."""

from analysis.hdr import load_cell_histograms, merge_encoded, percentiles
from analysis.load import load_run
from analysis.summary import summarize_run

__all__ = ["load_cell_histograms", "load_run", "merge_encoded", "percentiles", "summarize_run"]
