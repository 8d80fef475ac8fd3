"""The written report of the checked-in fixture run: its files, sections and charts."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from analysis.report.writer import write_report
from tests.analysis.fixtures import ROOT, add_probes, build_tiny

TINY = ROOT / "tiny"


def test_checked_in_fixture_is_what_the_builder_makes(tmp_path: Path) -> None:
    built = build_tiny(tmp_path)
    comparison = filecmp.dircmp(built, TINY)
    assert not comparison.left_only and not comparison.right_only
    for sub in (built / "cells").iterdir():
        for path in sub.iterdir():
            assert path.read_bytes() == (TINY / "cells" / sub.name / path.name).read_bytes(), path


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A copy of the tiny fixture run with its report written (once: tests only read it)."""
    run = tmp_path_factory.mktemp("report") / "tiny"
    shutil.copytree(TINY, run)
    return run, write_report(run)


def test_report_files_are_written(tiny_report: tuple[Path, dict[str, Path]]) -> None:
    run, written = tiny_report
    markdown = written["markdown"].read_text()
    assert "## The article's table, re-checked" in markdown
    assert "| Performance |" in markdown
    assert markdown.index("## The answer") < markdown.index("Cheapest to dearest, read scenario, "
                                                            "10 users, 1 node: none-read")
    assert markdown.index("Cheapest to dearest") < markdown.index("## The article's table")
    page = written["html"].read_text()
    assert "<h2 id=answer>The answer</h2>" in page
    assert "<td>jwt-memory-HS256-read-u10-n2</td><td>4,500.0</td>" in page
    assert page.count("data:image/png;base64,") == len(list((run / "charts").glob("*.png")))
    assert "<script" not in page and "http://" not in page.replace("http://127.0.0.1:1", "")
    for name in ("latency-percentiles", "throughput", "scaling", "where-time-goes"):
        assert (run / "charts" / f"{name}.svg").exists()
        assert (run / "charts" / f"{name}.png").stat().st_size > 5_000


def test_report_has_configurations_and_transport_chart(
    tiny_report: tuple[Path, dict[str, Path]],
) -> None:
    run, written = tiny_report
    markdown = written["markdown"].read_text()
    assert "## Configurations" in markdown
    assert "| jwt-memory-HS256-read-u10-n2 | 1 | 160 |" in markdown
    assert (run / "charts" / "credential-bytes.png").exists()
    assert "1/10 s" not in markdown
    assert "10 users · 10.0 s measured per window · 1 repeat ·" in markdown


def test_a_run_whose_every_cell_failed_still_gets_a_report(tmp_path: Path) -> None:
    run = tmp_path / "failed"
    shutil.copytree(TINY, run)
    for cell in (run / "cells").iterdir():
        if not cell.name.startswith("006-"):
            shutil.rmtree(cell)
    markdown = write_report(run)["markdown"].read_text()
    assert "No configuration was measured." in markdown
    assert "cell 006-hybrid-memory-HS256-read-u10-n1-r1 was not measured" in markdown


def test_report_has_a_revocation_section_with_its_chart(tmp_path: Path) -> None:
    run = tmp_path / "tiny"
    shutil.copytree(TINY, run)
    add_probes(run)
    written = write_report(run)
    markdown = written["markdown"].read_text()
    section = markdown[markdown.index("## Revocation"):markdown.index("## Configurations")]
    assert "### How long a logged-out credential keeps working" in section
    assert "| session in memory · node that logged out | 5 |" not in section  # one node
    assert "| session in memory | 5 | rejected at the first replay (it left 1.0 ms" in section
    assert "never rejected while watched" in section
    assert "![Revocation lag per strategy](charts/revocation-lag.svg)" in section
    assert (run / "charts" / "revocation-lag.png").stat().st_size > 5_000
    verdict = next(line for line in markdown.splitlines() if line.startswith("| Revocation |"))
    assert "depends on the strategy: sessions: holds" in verdict
    assert "JWT without revocation: holds, valid until exp" in verdict
    page = written["html"].read_text()
    assert "<h2>Revocation</h2>" in page and "id=chart-revocation-lag" in page
    assert "<td>session in memory</td>" in page


def test_a_folder_of_bench_results_alone_gets_its_own_report(tmp_path: Path) -> None:
    growth = [{"store": "redis", "entries": n, "bytes": n * 100, "bytes_per_entry": 100.0,
               "insert_seconds": n / 1e6, "check_present_us": 20.0, "check_absent_us": 18.0,
               "bytes_method": "INFO memory"} for n in (1_000, 10_000)]
    (tmp_path / "revocation.json").write_text(json.dumps({
        "schema_version": 1, "started": "2027-01-15T08:00:00+00:00",
        "machine": {"cpu_count": 2, "cpu_model": "Fixture CPU", "python": "3.11.7"},
        "growth": growth}))
    written = write_report(tmp_path)
    markdown = written["markdown"].read_text()
    assert markdown.startswith(f"# authbench revocation: {tmp_path.name}\n\n_authbench "
                               "revocation · 2x Fixture CPU · Python 3.11.7 · started 2027-")
    assert "| redis | 10,000 | 1.00 | 100 | 0.01 | 20.0 | 18.0 |" in markdown
    assert "![Blocklist storage against entries](charts/revocation-storage.svg)" in markdown
    page = written["html"].read_text()
    assert "<h3>Blocklist storage</h3>" in page and "id=chart-revocation-storage" in page
    assert "charts/revocation-storage.svg" not in page  # the chart is embedded, not linked
