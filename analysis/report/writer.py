"""The report: report.md, a self-contained report.html and charts/, rebuilt from raw files.

The I/O end of the analysis: report_data computes, report_sections and report_html
render, plots draw; this module saves the charts and writes the files.
"""

from __future__ import annotations

from pathlib import Path

from analysis.data.endpoints import ME
from analysis.data.formats import MICRO, REVOCATION_STORAGE, load_json
from analysis.latency.curve import curve_section
from analysis.report import plots
from analysis.report.breakeven import breakeven_section
from analysis.report.data import build_report
from analysis.report.html import HtmlSection, Pngs, render_html, standalone_html
from analysis.report.scaleout import scaleout_section
from analysis.report.sections import (
    Section,
    charts_for,
    faults_section,
    markdown_lines,
    micro_section,
    revocation_section,
)
from analysis.revocation.storage import revocation_storage_section
from analysis.store.distance import store_rtt_section

Saved = list[tuple[str, str, str]]  # (chart name, title, SVG path relative to the run)
STANDALONE = {"micro.json": MICRO, "revocation.json": REVOCATION_STORAGE}


def _save(run: Path, section: Section, pngs: Pngs) -> Saved:
    """Write a section's charts as SVG and PNG into charts/; keep each PNG in pngs."""
    saved = []
    for name, title, figure in section[1]:
        paths = plots.save_figure(figure, run / "charts", name)
        pngs[name] = (title, paths["png"].read_bytes())
        saved.append((name, title, str(paths["svg"].relative_to(run))))
    return saved


def _with_images(lines: list[str], saved: Saved) -> list[str]:
    """A section's Markdown followed by its charts (SVG)."""
    return [*lines, *(line for _, title, svg in saved for line in (f"![{title}]({svg})", ""))]


def write_standalone_report(run: Path) -> dict[str, Path]:
    """report.md and report.html for a folder of `authbench micro` or `bench-revocation`."""
    sources = [run / name for name in STANDALONE if (run / name).exists()]
    header = load_json(sources[0], STANDALONE[sources[0].name])
    machine = header.get("machine", {})
    kinds = " + ".join(path.stem for path in sources)
    caption = (f"authbench {kinds} · {machine.get('cpu_count', '?')}x "
               f"{machine.get('cpu_model', '?')} · Python {machine.get('python', '?')} · "
               f"started {header.get('started', '?')}")
    pngs: Pngs = {}
    sections: list[HtmlSection] = []
    body: list[str] = []
    for section in (micro_section(run, caption), revocation_storage_section(run, caption)):
        saved = _save(run, section, pngs)
        body += _with_images(section[0], saved)
        sections.append((section[0], [name for name, _, _ in saved]))
    title = f"authbench {kinds}: {run.name}"
    markdown = run / "report.md"
    markdown.write_text("\n".join([f"# {title}", "", f"_{caption}_", "", *body]))
    page = run / "report.html"
    page.write_text(standalone_html(title, caption, pngs, sections))
    return {"markdown": markdown, "html": page, "charts": run / "charts"}


def write_report(run: Path) -> dict[str, Path]:
    """Rebuild report.md, report.html and charts/ in the run folder from its raw files."""
    if not (run / "metadata.json").exists() and (
            (run / "micro.json").exists() or (run / "revocation.json").exists()):
        return write_standalone_report(run)
    report = build_report(run)
    pngs: Pngs = {}
    charts = _save(run, ([], charts_for(report)), pngs)
    extra: list[str] = []
    sections: list[HtmlSection] = []
    # What would flip the answer comes first, right after the answer, the article's table
    # and their charts; the sections its figures come from follow.
    for section in (breakeven_section(report.frame, run, report.caption),
                    store_rtt_section(report.frame, report.caption),
                    scaleout_section(report.frame, run, report.caption),
                    curve_section(report.frame, ME, report.caption),
                    revocation_section(run, report), faults_section(report),
                    micro_section(run, report.caption)):
        saved = _save(run, section, pngs)
        if section[0]:
            extra += _with_images(section[0], saved)
        sections.append((section[0], [name for name, _, _ in saved]))
    body = markdown_lines(report, {title: svg for _, title, svg in charts})
    # The extra sections go after the charts, before the per-configuration tables.
    at = body.index("## Configurations") if "## Configurations" in body else len(body)
    markdown = run / "report.md"
    markdown.write_text("\n".join(body[:at] + extra + body[at:]))
    page = run / "report.html"
    page.write_text(render_html(report, pngs, sections))
    return {"markdown": markdown, "html": page, "charts": run / "charts"}
