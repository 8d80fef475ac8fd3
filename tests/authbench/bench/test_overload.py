"""Overload: real targets past MAX_CONCURRENCY, real h2load; the figures on known inputs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from authbench.bench.h2load import H2loadResult, LogSummary, percentile, read_log, run_h2load
from authbench.bench.overload.measure import ResourceSampler, peak_rss_bytes, probe
from authbench.bench.overload.render import format_markdown
from authbench.bench.overload.result import OverloadRow, Probe, Sample, recovered_after, summarize
from tests.conftest import StartTarget

needs_h2load = pytest.mark.skipif(shutil.which("h2load") is None,
                                  reason="h2load is not installed (apt-get install nghttp2-client)")
# The real password KDF: a login holds its request slot for ~0.1-0.3 s of scrypt in a
# thread, so 4 slots overflow at a few dozen logins a second, without loading the machine.
SLOW_LOGINS = {"AUTH_MODE": "jwt", "MAX_CONCURRENCY": "4", "SEED_USERS": "4",
               "KDF_N": "16384", "KDF_P": "5"}
LOGIN = b'{"username": "user1", "password": "pw-user1"}'


@pytest.mark.slow  # h2load against a real target with the real KDF
@needs_h2load
def test_a_target_past_its_bound_sheds_with_503_stays_bounded_and_recovers(
        start_target: StartTarget, tmp_path: Path) -> None:
    target = start_target(**SLOW_LOGINS)
    baseline = probe(f"{target.url}/noauth", {}, 1.0, time.monotonic())
    baseline_ms = sorted(p.ms for p in baseline)[len(baseline) // 2]
    body = tmp_path / "login.json"
    body.write_bytes(LOGIN)
    sampler = ResourceSampler(target.pid, interval=0.1).start()
    load = run_h2load(f"{target.url}/auth/login", 3, 12, 5.0, tmp_path / "h2load.log",
                      headers={"Content-Type": "application/json"}, body_path=body)
    stopped = time.monotonic()
    after = probe(f"{target.url}/noauth", {}, 5.0, stopped,
                  stop_when_recovered_below=max(3 * baseline_ms, 20.0))
    samples = sampler.stop()

    assert target.is_alive()
    assert set(load.log.statuses) <= {200, 503}, load.log.statuses  # never another 5xx
    assert load.log.statuses.get(503, 0) > load.log.statuses.get(200, 0) > 0
    assert load.delivered_rps > 40  # 60 offered: the generator was not the limit
    # RSS: 4 slots of scrypt (16 MB each) at most, over what the target held before.
    assert max(s.rss_bytes for s in samples) < samples[0].rss_bytes + 120 * 2**20
    assert (peak_rss_bytes(target.pid) or 0) < 400 * 2**20
    recovered = recovered_after(after, max(3 * baseline_ms, 20.0))
    assert recovered is not None and recovered < 3.0, after


def test_read_log_counts_statuses_per_second_and_2xx_latency() -> None:
    lines = ["1000000000000000\t200\t1000", "1000000000500000\t503\t100",
             "1000000001200000\t200\t3000", "1000000001300000\t-1\t0",
             "1000000002100000\t401\t500", "bad line"]
    log = read_log(lines)
    assert log.statuses == {200: 2, 503: 1, -1: 1, 401: 1}
    assert log.per_second == [[1, 1, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0]]
    assert log.ok_p50_ms == 1.0 and log.ok_p99_ms == 3.0
    assert percentile(list(range(1, 101)), 0.99) == 99.0


def test_recovered_after_needs_a_run_of_normal_2xx_probes() -> None:
    probes = [Probe(0.0, 503, 1.0), Probe(0.1, 200, 9.0), Probe(0.2, 200, 1.0),
              Probe(0.3, 200, 1.1), Probe(0.4, 200, 0.9), Probe(0.5, 200, 1.0),
              Probe(0.6, 200, 1.2), Probe(0.7, 200, 1.0)]
    assert recovered_after(probes, threshold_ms=1.5) == 0.2
    assert recovered_after(probes, threshold_ms=9.5, run=7) == 0.1
    assert recovered_after(probes, threshold_ms=0.95) is None  # 0.9 starts no run of 5
    assert recovered_after(probes[:5], threshold_ms=1.5) is None


def _load() -> H2loadResult:
    log = LogSummary(statuses={200: 9_000, 503: 20_000, 500: 1, -1: 4}, ok_p50_ms=50.0,
                     ok_p99_ms=90.0)
    return H2loadResult(seconds=10.0, clients=500, rps_per_client=6.0, started=29_500,
                        done=29_005, errored=2, timeout=3, log=log)


def test_summarize_and_format_on_known_figures() -> None:
    samples = [Sample(0.0, 100 * 2**20, 10.0), Sample(5.0, 150 * 2**20, 14.5),
               Sample(10.0, 140 * 2**20, 19.0), Sample(12.0, 120 * 2**20, 19.2)]
    baseline = [Probe(-2.0, 200, 1.0), Probe(-1.9, 200, 2.0), Probe(-1.8, 200, 1.2)]
    after = [Probe(0.05, 200, 3.0), *(Probe(0.15 + i / 10, 200, 1.5) for i in range(5))]
    row = summarize("jwt", 1_000.0, _load(), samples, baseline, after, 1.5, True, 0.95)
    assert row.offered_rps == 3_000.0 and row.delivered_rps == 2_950.0
    assert row.delivered_share == pytest.approx(2_950 / 3_000)
    assert row.ok_rps == 900.0
    assert row.shed_share == pytest.approx(20_000 / 29_005)
    assert (row.other_5xx, row.errors, row.timeouts) == (1, 6, 3)
    assert (row.rss_before_mb, row.rss_peak_mb, row.rss_after_mb) == (100.0, 150.0, 120.0)
    assert row.cpu_share == pytest.approx(0.9)
    assert row.others_share == pytest.approx(0.05)
    assert row.baseline_ms == 1.2 and row.recovery_s == 0.15
    assert row.is_ok is False  # the one 500
    table = format_markdown([row], {"session-redis": "Redis does not answer"})
    assert table[2] == ("| jwt | 1,000 | 3,000 | 2,950 (98%) | 900 | 69% | 1 | 6 / 3 "
                        "| 50.0 / 90.0 | 100 / 150 / 120 | 0.90 | 5% | 1.20 | 0.1 s | NO |")
    assert table[3] == "- session-redis: skipped, Redis does not answer"
    dead = OverloadRow(**{**row.__dict__, "other_5xx": 0, "is_alive": False})
    assert "DIED" in format_markdown([dead], {})[2]
    fine = OverloadRow(**{**row.__dict__, "other_5xx": 0})
    assert fine.is_ok
