"""Percentiles from known histograms; merging is exact, never an average of percentiles;
each file's histograms are read with the parameters the file records."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from analysis.data.formats import HDR, UnknownFormat
from analysis.data.hdr import (
    is_timing,
    load_cell_histograms,
    mean_value,
    measured_bounds,
    merge,
    percentiles,
)


def histogram(values_us: list[int], significant_figures: int = 3) -> HdrHistogram:
    h = HdrHistogram(1, 60_000_000, significant_figures)
    for value in values_us:
        h.record_value(value)
    return h


def write_hdr(folder: Path, pid: int, histograms: dict[str, HdrHistogram],
              failures: dict[str, int] | None = None, **fields: Any) -> Path:
    """An hdr-*.json as loadtests/hdr.py writes it, its parameters those of the histograms."""
    first = next(iter(histograms.values()))
    body = {"format": HDR.names[0], "unit": "us", "lowest": first.lowest_trackable_value,
            "highest": first.highest_trackable_value,
            "significant_figures": first.significant_figures, "host": "h", "pid": pid,
            "measured_from": 100.0 + pid, "measured_until": 110.0 + pid,
            "histograms": {name: h.encode().decode() for name, h in histograms.items()},
            "failures": failures or {}, **fields}
    path = folder / f"hdr-h-{pid}.json"
    path.write_text(json.dumps(body))
    return path


def test_percentiles_of_a_known_distribution() -> None:
    # 1,000 requests of 1..1000 ms: p50 = 500 ms, p99 = 990 ms, max = 1000 ms (3 digits).
    got = percentiles(histogram([ms * 1000 for ms in range(1, 1001)]))
    assert got["p50_ms"] == pytest.approx(500, rel=1e-3)
    assert got["p90_ms"] == pytest.approx(900, rel=1e-3)
    assert got["p99_ms"] == pytest.approx(990, rel=1e-3)
    assert got["p99_9_ms"] == pytest.approx(999, rel=1e-3)
    assert got["max_ms"] == pytest.approx(1000, rel=1e-3)
    assert got["mean_ms"] == pytest.approx(500.5, rel=1e-3)


def test_percentiles_in_microseconds_and_of_no_histogram() -> None:
    assert percentiles(histogram([4] * 10), "us")["p50_us"] == 4.0
    missing = percentiles(None)
    assert set(missing) == {"p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms", "mean_ms"}
    assert all(value != value for value in missing.values())  # NaN


def test_merging_two_workers_equals_one_histogram_of_everything() -> None:
    fast = [100] * 900  # 0.1 ms
    slow = [50_000] * 100  # 50 ms
    merged = merge([histogram(fast), histogram(slow)])
    assert merged is not None
    assert percentiles(merged) == percentiles(histogram(fast + slow))
    # What averaging each worker's p99 would have said instead: (0.1 + 50) / 2 = 25 ms.
    assert percentiles(merged)["p90_ms"] == pytest.approx(0.1, rel=1e-2)
    assert percentiles(merged)["p99_ms"] == pytest.approx(50, rel=1e-2)
    assert merge([]) is None


def test_histograms_of_other_parameters_are_not_merged() -> None:
    with pytest.raises(ValueError, match="cannot be added exactly"):
        merge([histogram([100], 3), histogram([100], 2)])


def test_load_cell_histograms_merges_files_and_failures(tmp_path: Path) -> None:
    for pid, (values, failed) in enumerate([([1000] * 10, 2), ([3000] * 30, 1)]):
        write_hdr(tmp_path, pid, {"GET /api/me": histogram(values)}, {"GET /api/me": failed})
    histograms, failures = load_cell_histograms(tmp_path)
    assert histograms["GET /api/me"].get_total_count() == 40
    assert failures == {"GET /api/me": 3}
    assert percentiles(histograms["GET /api/me"])["p50_ms"] == pytest.approx(3.0, rel=1e-2)
    assert measured_bounds(tmp_path) == (100.0, 111.0)  # the first start, the last end


def test_the_files_significant_figures_are_used(tmp_path: Path) -> None:
    write_hdr(tmp_path, 1, {"GET /api/me": histogram([1234] * 5, significant_figures=2)})
    merged = load_cell_histograms(tmp_path)[0]["GET /api/me"]
    assert merged.significant_figures == 2
    assert merged.get_value_at_percentile(50) == histogram([1234], 2).get_value_at_percentile(50)


def test_a_file_whose_histograms_contradict_its_parameters_is_refused(tmp_path: Path) -> None:
    path = write_hdr(tmp_path, 1, {"GET /api/me": histogram([1000])})
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "significant_figures": 2}))
    with pytest.raises(ValueError, match=r"'GET /api/me'.*cannot be added exactly"):
        load_cell_histograms(tmp_path)


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    write_hdr(tmp_path, 1, {"GET /api/me": histogram([1000])}, format="authbench-hdr/1")
    path = tmp_path / "hdr-h-1.json"
    with pytest.raises(UnknownFormat, match=f"{path}: format 'authbench-hdr/1', and this "
                       "authbench reads authbench-hdr/2 or authbench-hdr/3"):
        load_cell_histograms(tmp_path)
    with pytest.raises(UnknownFormat, match="authbench-hdr/1"):
        measured_bounds(tmp_path)


def test_server_timing_histograms_are_told_from_endpoints() -> None:
    assert is_timing("auth GET /api/me") and is_timing("auth-cpu GET /api/me")
    assert is_timing("store GET /api/me")
    assert not is_timing("GET /api/me") and not is_timing("POST /auth/login")


@pytest.mark.parametrize("latencies_us", [[], [2729], [1, 50, 50, 7_000, 59_000_000],
                                          [random.Random(seed).randint(1, 10**6)
                                           for seed in range(2_000)]])
def test_mean_value_is_the_librarys_mean(latencies_us: list[int]) -> None:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value in latencies_us:
        histogram.record_value(value)
    assert mean_value(histogram) == histogram.get_mean_value()
