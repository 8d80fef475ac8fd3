"""Builds the checked-in result fixtures under tests/fixtures/runs/ (known inputs).

`python -m tests.analysis.fixtures` rewrites them; test_fixtures.py checks the files
on disk are exactly what this code builds, so they cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "runs"
STARTED = 1_800_000_000.0


def _encoded(values_us: list[int]) -> str:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value in values_us:
        histogram.record_value(value)
    return str(histogram.encode().decode())


def _checks(mode: str, revocation: str) -> list[dict[str, Any]]:
    names = ["health", "no credential", "login", "with credential"]
    if mode == "session" or revocation == "blocklist":
        names.append("revoked after logout")
    elif mode != "none":
        names.append("valid until exp (no revocation configured)")
    return [{"name": n, "is_passed": True, "detail": "HTTP 200"} for n in names]


CELL_DEFAULTS: dict[str, Any] = {
    "mode": "jwt", "store": "memory", "alg": "HS256", "revocation": "none", "verify_cache": 0,
    "scenario": "read", "users": 10, "spawn_rate": 0.0, "nodes": 1, "workers": 0, "scale": 0,
    "duration": 10.0, "warmup": 2.0, "balance": "roundrobin",
}


def _cell(folder: Path, cell: dict[str, Any], latency_us: list[int], auth_us: list[int],
          failures: int = 0, credential_bytes: int = 300, cpu_seconds: float = 5.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    full = {**CELL_DEFAULTS, **cell}
    histograms = {"GET /api/me": _encoded(latency_us)}
    if auth_us:
        histograms["auth GET /api/me"] = _encoded(auth_us)
    (folder / "hdr-fixture-1.json").write_text(json.dumps({
        "format": "authbench-hdr/1", "unit": "us", "significant_figures": 3,
        "started": STARTED, "warmup": full["warmup"], "measured_from": STARTED + 2,
        "measured_until": STARTED + 12,  # a 10 s window: rps = count / 10
        "histograms": histograms, "failures": {"GET /api/me": failures} if failures else {},
    }, sort_keys=True))
    count = len(latency_us)
    (folder / "locust_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Requests/s\n"
        f"GET,/api/me,{count + failures},{failures},{(count + failures) / 10}\n"
        f",Aggregated,{count + failures},{failures},{(count + failures) / 10}\n")
    (folder / "cell.json").write_text(json.dumps({
        "name": folder.name, "cell": full, "status": "ok", "reason": "",
        "topology": {"kind": "haproxy" if full["nodes"] > 1 else "single"},
        "verify": [{"is_passed": True, "checks": _checks(full["mode"], full["revocation"]),
                    "credential_bytes": credential_bytes}],
        "nodes": [{"pid": 1, "cpu_seconds": cpu_seconds, "peak_rss_bytes": 100 * 2**20}],
        "locust": {"exit_code": 0, "cpu_warnings": 0, "command": []},
    }, indent=1, sort_keys=True))


def build_tiny(root: Path = ROOT) -> Path:
    """A run of six cells whose figures are known exactly (see test_report.py)."""
    run = root / "tiny"
    cells = run / "cells"
    (run / "metadata.json").parent.mkdir(parents=True, exist_ok=True)
    (run / "metadata.json").write_text(json.dumps({
        "schema_version": 1, "run_id": "tiny", "status": "complete",
        "started": "2027-01-15T08:00:00+00:00", "ended": "2027-01-15T08:05:00+00:00",
        "suite": {"name": "tiny", "repeats": 1, "cells": [], "skipped": []},
        "machine": {"cpu_count": 2, "cpu_model": "Fixture CPU", "python": "3.11.7",
                    "memory_bytes": 8 * 2**30, "platform": "Linux", "packages": {"PyJWT": "2.15.1"},
                    "openssl": {"python_ssl": "OpenSSL 3.0"}, "git_commit": "fixture"},
        "topology": {"load_balancer": "haproxy"}, "notes": [],
    }, indent=1, sort_keys=True))
    # none: 1,000 requests of 1..1000 us. p50 = 0.5 ms, p99 = 0.99 ms.
    _cell(cells / "001-none-read-u10-n1-r1", {"mode": "none"},
          list(range(1, 1001)), [], credential_bytes=0)
    # session in memory: auth 5 us; 900 requests at 2 ms.
    _cell(cells / "002-session-memory-read-u10-n1-r1", {"mode": "session"},
          [2000] * 900, [5] * 900, credential_bytes=49)
    # jwt HS256: auth 60 us; 800 requests at 3 ms.
    _cell(cells / "003-jwt-memory-HS256-read-u10-n1-r1", {"mode": "jwt"},
          [3000] * 800, [60] * 800, credential_bytes=320)
    # memory sessions on 2 nodes behind round robin: half the requests fail.
    _cell(cells / "004-session-memory-read-u10-n2-r1", {"mode": "session", "nodes": 2},
          [2000] * 500, [5] * 500, failures=500, credential_bytes=49)
    # jwt on 2 nodes: no failures.
    _cell(cells / "005-jwt-memory-HS256-read-u10-n2-r1", {"mode": "jwt", "nodes": 2},
          [3000] * 1600, [60] * 1600, credential_bytes=320)
    failed = cells / "006-hybrid-memory-HS256-read-u10-n1-r1"
    failed.mkdir(parents=True, exist_ok=True)
    (failed / "cell.json").write_text(json.dumps({
        "name": failed.name, "cell": {**CELL_DEFAULTS, "mode": "hybrid"}, "status": "failed",
        "reason": "verification failed on http://127.0.0.1:1: revoked after logout: HTTP 200",
    }, indent=1, sort_keys=True))
    return run


def build_pair(root: Path = ROOT) -> tuple[Path, Path]:
    """Two runs of one JWT cell x 4 repeats: 'before' ~100 req/s, 'after' ~80 req/s."""
    runs = []
    for name, counts in (("before", [1000, 1020, 980, 1010]), ("after", [800, 820, 780, 790])):
        run = root / name
        run.mkdir(parents=True, exist_ok=True)
        (run / "metadata.json").write_text(json.dumps({
            "schema_version": 1, "run_id": name, "status": "complete",
            "suite": {"name": name, "repeats": 4, "cells": [], "skipped": []}, "machine": {},
        }, indent=1, sort_keys=True))
        for repeat, count in enumerate(counts, 1):
            folder = run / "cells" / f"{repeat:03d}-jwt-memory-HS256-read-u10-n1-r{repeat}"
            _cell(folder, {"mode": "jwt"}, [3000] * count, [60] * count)
        runs.append(run)
    return runs[0], runs[1]


if __name__ == "__main__":
    print(build_tiny())
    print(build_pair())
