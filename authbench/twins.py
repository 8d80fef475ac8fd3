"""`authbench twins`: start the twin targets and put a short Locust load through each."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authbench.launcher import TargetProcess

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "read.py"

# The embedded default: needs no service (memory store, HMAC JWT).
DEFAULT_TWINS: dict[str, dict[str, str]] = {
    "none": {"AUTH_MODE": "none"},
    "session-memory": {"AUTH_MODE": "session", "STORE": "memory"},
    "jwt-HS256": {"AUTH_MODE": "jwt", "JWT_ALG": "HS256"},
    "hybrid-memory": {"AUTH_MODE": "hybrid", "STORE": "memory", "JWT_ALG": "HS256"},
}


@dataclass(frozen=True)
class TwinResult:
    """Locust's aggregated figures for GET /api/me on one twin."""

    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float


def read_locust_stats(path: Path, name: str = "/api/me") -> dict[str, str]:
    """The row of Locust's <prefix>_stats.csv for one request name."""
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == name:
                return row
    raise LookupError(f"{path}: no row for {name}")


def run_locust(
    url: str, prefix: Path, users: int, seconds: int
) -> subprocess.CompletedProcess[str]:
    """Locust headless in its own process (gevent never patches the harness)."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "--host", url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
        "--csv", str(prefix), "--csv-full-history", "--only-summary",
        "--stop-timeout", "5", "--loglevel", "WARNING",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)


def measure_twin(
    name: str, env: dict[str, str], folder: Path, users: int, seconds: int
) -> TwinResult:
    """Start one twin, load it, stop it, and read Locust's figures."""
    folder.mkdir(parents=True, exist_ok=True)
    with TargetProcess(env, log_path=folder / "target.log") as target:
        done = run_locust(target.url, folder / "locust", users, seconds)
    (folder / "locust.log").write_text(done.stdout + done.stderr)
    row = read_locust_stats(folder / "locust_stats.csv")
    return TwinResult(
        name=name,
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        rps=float(row["Requests/s"]),
        p50_ms=float(row["50%"]),
        p99_ms=float(row["99%"]),
    )


def format_table(results: list[TwinResult]) -> list[str]:
    """The summary as lines; the floor (mode none) is the 1.00 of the ratio column."""
    floor = next((r.rps for r in results if r.name == "none"), 0.0)
    lines = [f"{'twin':<16}{'requests':>10}{'fail':>6}{'req/s':>9}{'vs none':>9}"
             f"{'p50 ms':>8}{'p99 ms':>8}"]
    for r in results:
        ratio = f"{r.rps / floor:.2f}" if floor else "-"
        lines.append(f"{r.name:<16}{r.requests:>10}{r.failures:>6}{r.rps:>9.0f}{ratio:>9}"
                     f"{r.p50_ms:>8.0f}{r.p99_ms:>8.0f}")
    return lines


def cmd_twins(args: argparse.Namespace) -> int:
    """Start each twin target in turn and drive it with Locust for a few seconds."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    root = Path(args.results) / f"twins-{stamp}"
    results = []
    for index, (name, env) in enumerate(DEFAULT_TWINS.items(), 1):
        print(f"[{index}/{len(DEFAULT_TWINS)}] {name}: {args.users} users for {args.seconds}s",
              flush=True)
        results.append(measure_twin(name, env, root / name, args.users, args.seconds))
    print("\n".join(format_table(results)))
    print(f"raw Locust files: {root}")
    return 0


def add_parser(sub: Any) -> None:
    """Register `authbench twins` on the CLI's subparsers."""
    parser = sub.add_parser("twins", help=cmd_twins.__doc__, description=cmd_twins.__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--results", default="results")
    parser.set_defaults(handler=cmd_twins)
