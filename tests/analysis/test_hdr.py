"""Percentiles from known histograms; merging is exact, never an average of percentiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from analysis.hdr import load_cell_histograms, merge_encoded, percentiles


def histogram(values_us: list[int]) -> HdrHistogram:
    h = HdrHistogram(1, 60_000_000, 3)
    for value in values_us:
        h.record_value(value)
    return h


def test_percentiles_of_a_known_distribution() -> None:
    # 1,000 requests of 1..1000 ms: p50 = 500 ms, p99 = 990 ms, max = 1000 ms (3 digits).
    h = histogram([ms * 1000 for ms in range(1, 1001)])
    got = percentiles(h)
    assert got["count"] == 1000
    assert got["p50_ms"] == pytest.approx(500, rel=1e-3)
    assert got["p90_ms"] == pytest.approx(900, rel=1e-3)
    assert got["p99_ms"] == pytest.approx(990, rel=1e-3)
    assert got["p99.9_ms"] == pytest.approx(999, rel=1e-3)
    assert got["max_ms"] == pytest.approx(1000, rel=1e-3)


def test_merging_two_workers_equals_one_histogram_of_everything() -> None:
    fast = [100] * 900  # 0.1 ms
    slow = [50_000] * 100  # 50 ms
    merged = merge_encoded([histogram(fast).encode().decode(),
                            histogram(slow).encode().decode()])
    whole = histogram(fast + slow)
    assert percentiles(merged) == percentiles(whole)
    # What averaging each worker's p95 would have said instead: (0.1 + 50) / 2 = 25 ms.
    assert percentiles(merged)["p90_ms"] == pytest.approx(0.1, rel=1e-2)
    assert percentiles(merged)["p99_ms"] == pytest.approx(50, rel=1e-2)


def test_load_cell_histograms_merges_files_and_failures(tmp_path: Path) -> None:
    for pid, (values, failed) in enumerate([([1000] * 10, 2), ([3000] * 30, 1)]):
        (tmp_path / f"hdr-host-{pid}.json").write_text(json.dumps({
            "histograms": {"GET /api/me": histogram(values).encode().decode()},
            "failures": {"GET /api/me": failed},
        }))
    histograms, failures = load_cell_histograms(tmp_path)
    assert histograms["GET /api/me"].get_total_count() == 40
    assert failures == {"GET /api/me": 3}
    assert percentiles(histograms["GET /api/me"])["p50_ms"] == pytest.approx(3.0, rel=1e-2)
