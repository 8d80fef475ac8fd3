"""`authbench run quick --api examples/<name>/api.toml`, end to end, for every example:
the API started from its adapter file, verified, measured under the quick suite's load,
probed for revocation, and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 400

pytestmark = pytest.mark.slow  # each is a whole quick run (about 80 s)


def _run_quick(adapter: str, results: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    done = subprocess.run(
        [sys.executable, "-m", "authbench", "run", "quick", "--api", adapter,
         "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    runs = sorted(results.iterdir()) if results.is_dir() else []
    assert len(runs) == 1, f"{done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done, runs[0]


def _section(run: Path, title: str) -> str:
    """One `## title` section of the run's report.md, without its sub-headings' end."""
    text = (run / "report.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _cost_order(stdout: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith("cheapest to dearest:"))
    names = line.removeprefix("cheapest to dearest:").replace("≈", "<").split("<")
    return [name.strip() for name in names]


def _cheapest_group(stdout: str) -> list[str]:
    """The configurations before the first "<" of the cost order (joined by ≈)."""
    line = next(line for line in stdout.splitlines() if line.startswith("cheapest to dearest:"))
    first = line.removeprefix("cheapest to dearest:").split("<")[0]
    return [name.strip() for name in first.split("≈")]


def test_the_flask_example_runs_quick_and_ranks_its_variants(tmp_path: Path) -> None:
    done, run = _run_quick("examples/flask/api.toml", tmp_path / "results")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["target"] == "external"
    assert [v["name"] for v in metadata["api"]["variants"]] == ["session", "jwt"]
    assert (run / "api.toml").read_text() == (ROOT / "examples/flask/api.toml").read_text()
    # Ranked by cost, each measured in every repeat: no variant measured as cheaper than
    # the floor (the floor in the cheapest group; its range and the session's overlap, so
    # their medians can swap: 356.7 against 453.2 us once, the other way round in CI).
    order = _cost_order(done.stdout)
    assert set(order) == {"api-floor-read-u20-n1", "api-session-read-u20-n1",
                          "api-jwt-read-u20-n1"}
    assert "api-floor-read-u20-n1" in _cheapest_group(done.stdout)
    assert "This run drove notes-flask (" in _section(run, "The answer")
    # Both variants' revocation is measured by a probe, and both revoke at once.
    revocation = _section(run, "Revocation")
    for label in ("session (session)", "jwt (jwt)"):
        row = next(line for line in revocation.splitlines() if line.startswith(f"| {label} |"))
        assert "rejected at the first replay" in row, row
    cells = [json.loads(p.read_text()) for p in sorted((run / "cells").glob("*/cell.json"))]
    assert cells and all(c["status"] == "ok" for c in cells)
    # The service's own processes were sampled (gunicorn's master and its worker).
    assert all(c["api"]["cpu_claimed"] for c in cells)
    assert all(len(c["nodes"]) == 2 for c in cells if c["cell"]["scenario"] == "read")
    assert not list((tmp_path / "results").glob("*/cells/*/hdr-*.part"))


def test_the_aiohttp_example_reports_a_logout_that_does_not_revoke(tmp_path: Path) -> None:
    done, run = _run_quick("examples/aiohttp/api.toml", tmp_path / "results")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    order = _cost_order(done.stdout)
    assert set(order) == {"api-floor-read-u20-n1", "api-session-read-u20-n1",
                          "api-jwt-read-u20-n1"}
    revocation = _section(run, "Revocation")
    rows = {line.split("|")[1].strip(): line for line in revocation.splitlines()
            if line.startswith("| ") and not line.startswith("| strategy")}
    assert "rejected at the first replay" in rows["session (session)"]
    # Its JWT logout answers 200 and revokes the refresh token only: the access token
    # keeps working, and the report bounds it by the token's remaining lifetime.
    assert "never rejected while watched" in rows["jwt (hybrid)"]
    assert "remaining lifetime" in rows["jwt (hybrid)"]
    assert "rejected at the first replay" in rows["jwt (hybrid) · refresh token"]
    assert "| jwt | hybrid | BOOKMARKS_AUTH=jwt | not declared to revoke | still accepted |" \
        in _section(run, "The answer")


TINY_SUITE = """name = "tiny"
repeats = 2
interleave = "windows"
[defaults]
users = 4
duration = 1
warmup = 0.2
rate = ["", "50%"]
[[matrix]]
mode = ["none", "session"]
"""


def test_an_api_already_running_is_measured_without_a_cost(tmp_path: Path) -> None:
    """`urls` and no `pids`: latency, throughput and revocation, and no CPU claimed."""
    from adapters.loading import load_adapter
    from authbench.infra.service import ServiceGroup
    from authbench.run.apirig import service_spec

    spec = service_spec(load_adapter(ROOT / "examples/aiohttp/api.toml").variant("session"))
    assert spec is not None
    text = (ROOT / "examples/aiohttp/api.toml").read_text()
    text = text[:text.index("[service]")] + "{urls}\n\n" + text[text.index("[users]"):]
    text = text[:text.index('[[variants]]\nname = "jwt"')]  # the session variant only
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY_SUITE)
    with ServiceGroup(spec, 1, tmp_path / "service") as group:
        adapter = tmp_path / "running.toml"
        adapter.write_text(text.replace("{urls}", f'urls = ["{group.node_urls[0]}"]'))
        done = subprocess.run(
            [sys.executable, "-m", "authbench", "run", str(suite), "--api", str(adapter),
             "--results", str(tmp_path / "results")],
            cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
        assert group.dead_nodes() == []  # authbench never stops a service it did not start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = next((tmp_path / "results").iterdir())
    cells = [json.loads(p.read_text()) for p in sorted((run / "cells").glob("*/cell.json"))]
    assert {c["cell"]["api"] for c in cells} == {"floor", "session"}
    assert not any(c["api"]["cpu_claimed"] for c in cells)
    assert all(c["nodes"] == [] for c in cells)  # no process sampled as the target's
    answer = _section(run, "The answer")
    assert "not claimed (no process named)" in answer
    assert "no cost per request and no bottleneck" in answer
    assert "cheapest to dearest" not in done.stdout  # nothing to rank by
    assert "rejected at the first replay" in _section(run, "Revocation")
