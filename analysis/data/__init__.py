"""Run folders read into frames: cells, histograms, formats, conformance, store counters
and API names."""
