"""report.html renders in a real headless Chromium, with no errors and its charts drawn."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.report.writer import write_report
from tests.analysis.fixtures import ROOT, add_probes

pytestmark = pytest.mark.slow  # a real headless Chromium

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs {message}")
        pytest.skip(message)
    return found


def render(
    binary: str, page: Path, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra,
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    binary = chromium()
    run = tmp_path / "tiny"
    shutil.copytree(ROOT / "tiny", run)
    add_probes(run)  # and so a revocation section, drawn from Markdown tables
    page = write_report(run)["html"]
    dom = render(binary, page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "The article's table, re-checked" in dom.stdout
    assert "How long a logged-out credential keeps working" in dom.stdout
    assert dom.stdout.count("<img") == len(list((run / "charts").glob("*.png")))
    problems = [line for line in dom.stderr.splitlines()
                if "Uncaught" in line or "Not allowed to load" in line
                or ("ERR_" in line and page.name in line)]
    assert problems == []
    shot = tmp_path / "report.png"
    screenshot = render(binary, page, tmp_path, f"--screenshot={shot}",
                        "--window-size=1200,2400", "--hide-scrollbars")
    assert screenshot.returncode == 0, screenshot.stderr[-2000:]
    # A page of text and tables alone compresses to far less than one with charts drawn.
    assert shot.stat().st_size > 60_000
