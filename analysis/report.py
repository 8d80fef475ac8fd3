"""The report: report.md and a self-contained report.html, rebuilt from a run's raw files.

It opens with the answer (the fastest configuration per mode and the article's
table re-checked), then the charts, the per-cell details and the method.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis import plots
from analysis.answer import answer_lines
from analysis.costs import cost_table, sanity_warnings
from analysis.endpoints import ME
from analysis.faults import fault_lines, fault_table, plot_fault_timelines
from analysis.formatting import number
from analysis.load import load_metadata, load_run, load_timelines
from analysis.micro import load_micro, micro_lines, plot_crypto_floor
from analysis.revocation import lag_lines, load_probes, overhead_lines, plot_lag_cdf
from analysis.revocation_storage import revocation_storage_section
from analysis.summaries import config_table, spread
from analysis.summary import cell_rows
from analysis.verdicts import Verdict, article_table

SPREAD_WARNING = 0.10  # coefficient of variation of req/s over repeats
WINDOW_WARNING = 0.8  # measured seconds below this share of the planned duration

Chart = Callable[[pd.DataFrame, str], Figure]


@dataclass(frozen=True)
class Report:
    """Everything a renderer needs, computed once from the raw files."""

    run_id: str
    metadata: dict[str, Any]
    frame: pd.DataFrame
    probes: pd.DataFrame  # revocation probe watches (analysis.revocation.load_probes)
    configs: pd.DataFrame
    costs: pd.DataFrame  # analysis.costs.cost_table: the answer's figures
    verdicts: list[Verdict]
    cells: list[dict[str, Any]]
    warnings: list[str]
    caption: str
    timelines: pd.DataFrame = field(default_factory=pd.DataFrame)  # load_timelines
    faults: pd.DataFrame = field(default_factory=pd.DataFrame)  # analysis.faults.fault_table


def method_warnings(frame: pd.DataFrame) -> list[str]:
    """Noise, a saturated load generator, warm-ups too short, failed cells."""
    warnings = []
    failed = frame[frame["status"] != "ok"]
    for _, row in failed.drop_duplicates("cell").iterrows():
        warnings.append(f"cell {row['cell']} was not measured: {row['reason']}")
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)]
    for key, group in hot.groupby("key"):
        variation = spread(group["rps"])
        if variation > SPREAD_WARNING:
            warnings.append(f"{key}: req/s varies by {100 * variation:.0f}% over "
                            f"{len(group)} repeats — too noisy to trust small differences")
    ok = frame[frame["status"] == "ok"].drop_duplicates("cell")
    for _, row in ok.iterrows():
        if row.get("locust_cpu_warnings", 0):
            warnings.append(f"{row['cell']}: Locust warned it ran out of CPU; the load generator "
                            "may have been the bottleneck")
        measured = row.get("measured_seconds")
        if measured is not None and not math.isnan(measured) and \
                measured < WINDOW_WARNING * float(row["duration"]):
            warnings.append(f"{row['cell']}: measured {measured:.1f} s of {row['duration']:.0f} s "
                            "planned (users were still logging in after the warm-up; raise it)")
    return warnings


def answer_section(report: Report) -> list[str]:
    """The answer's Markdown lines, from the run's costs and per-cell facts."""
    facts = report.frame.drop_duplicates("cell") if not report.frame.empty else report.frame
    return answer_lines(report.costs, facts)


def build_report(run: Path) -> Report:
    """Load the run and compute every table of the report."""
    metadata = load_metadata(run)
    frame = load_run(run)
    probes = load_probes(run)
    timelines = load_timelines(run)
    faults = fault_table(timelines, frame)
    configs = config_table(run, frame)
    costs = cost_table(frame)
    machine = metadata.get("machine", {})
    load = ""
    if not frame.empty and "users" in frame:
        users = sorted({int(u) for u in frame["users"].dropna()})
        windows = frame.drop_duplicates("cell")["measured_seconds"].dropna()
        measured = (f"{windows.min():.1f} s" if windows.max() - windows.min() < 0.05 else
                    f"{windows.min():.1f} to {windows.max():.1f} s") if len(windows) else "no"
        repeats = int(frame.groupby("key")["cell"].nunique().max()) if "key" in frame else 1
        load = (f" · {'/'.join(map(str, users))} users · {measured} measured per window"
                f" · {repeats} repeat{'s' if repeats > 1 else ''}")
    caption = (f"run {metadata['run_id']} · suite {metadata['suite']['name']}{load} · "
               f"{machine.get('cpu_count', '?')}x {machine.get('cpu_model', '?')} · "
               f"Python {machine.get('python', '?')} · started {metadata.get('started', '?')}")
    return Report(
        run_id=metadata["run_id"], metadata=metadata, frame=frame, probes=probes,
        configs=configs, costs=costs, verdicts=article_table(frame, probes, faults),
        cells=cell_rows(frame),
        warnings=sanity_warnings(costs) + method_warnings(frame) + [
            f"the {extra} extra failed, so its section is missing: {why} (measure it with "
            f"`authbench bench-revocation --into {run}`)"
            for extra, why in metadata.get("extras_failed", {}).items()],
        caption=caption, timelines=timelines, faults=faults,
    )


def charts_for(report: Report) -> list[tuple[str, str, Figure]]:
    """(file name, title, figure) for the charts this run has data for."""
    frame, caption = report.frame, report.caption
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)]
    if hot.empty:
        return []
    figures = [("latency-percentiles", "Latency percentiles",
                plots.plot_latency_percentiles(report.configs, caption))]
    charts: list[tuple[str, str, Chart]] = [
        ("throughput", "Throughput by configuration", plots.plot_throughput_by_config),
    ]
    if hot["users"].nunique() > 1:
        charts += [("throughput-vs-users", "Throughput against users",
                    plots.plot_throughput_vs_users),
                   ("latency-vs-throughput", "Latency against throughput",
                    plots.plot_latency_vs_throughput)]
    if hot["nodes"].nunique() > 1:
        charts.append(("scaling", "Scaling out", plots.plot_scaling))
    if hot["target_cpu_us"].notna().any():
        charts.append(("where-time-goes", "Where the time goes", plots.plot_where_time_goes))
    if (hot["scale"] > 0).any():
        charts.append(("latency-vs-sessions", "Latency and store memory against live sessions",
                       plots.plot_latency_vs_sessions))
    if frame.loc[frame["mode"] != "none", "credential_bytes"].notna().any():
        charts.append(("credential-bytes", "Credential bytes per request",
                       plots.plot_credential_bytes))
    return figures + [(name, title, plot(frame, caption)) for name, title, plot in charts]


def markdown_lines(report: Report, images: dict[str, str]) -> list[str]:
    """report.md; images maps chart names to their relative paths."""
    lines = [f"# authbench report: {report.run_id}", "", f"_{report.caption}_", "",
             "## The answer", "", *answer_section(report)]
    lines += ["## The article's table, re-checked", "",
              "| row | the article's claim | measured here | verdict |", "|---|---|---|---|"]
    for v in report.verdicts:
        lines.append(f"| {v.row} | {v.claim} | {v.measured} | {v.verdict} |")
    lines += ["", "## Charts", ""]
    for name, path in images.items():
        lines += [f"![{name}]({path})", ""]
    lines += ["## Configurations", "", "Percentiles from the histograms of every repeat merged; "
              "req/s is the median over repeats, spread its coefficient of variation.", "",
              "| configuration | repeats | req/s | spread | p50 | p90 | p99 | p99.9 | max "
              "| auth p50 | CPU ms/req | errors |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, c in report.configs.iterrows():
        lines.append(
            f"| {c['key']} | {c['repeats']} | {number(c['rps'], 0)} | "
            f"{number(100 * c['rps_spread'], 1)}% | {number(c['p50_ms'], 2)} | "
            f"{number(c['p90_ms'], 2)} | {number(c['p99_ms'], 2)} | "
            f"{number(c['p99_9_ms'], 2)} | {number(c['max_ms'], 2)} | "
            f"{number(c['auth_p50_ms'], 3)} | {number(c['cpu_ms_per_request'], 3)} | "
            f"{number(100 * c['error_rate'], 1)}% |")
    lines += ["", "## Details", "",
              "| cell | status | req/s | p50 | p90 | p99 | p99.9 | max | auth p50 | CPU ms/req "
              "| measured s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in report.cells:
        if c["status"] != "ok":
            lines.append(f"| {c['cell']} | failed: {c['reason']} | | | | | | | | | |")
            continue
        lines.append(
            f"| {c['cell']} | ok | {number(c.get('rps'), 0)} | {number(c.get('p50_ms'), 2)} | "
            f"{number(c.get('p90_ms'), 2)} | {number(c.get('p99_ms'), 2)} | "
            f"{number(c.get('p99_9_ms'), 2)} | {number(c.get('max_ms'), 2)} | "
            f"{number(c.get('auth_p50_ms'), 3)} | {number(c.get('cpu_ms_per_request'), 3)} | "
            f"{number(c.get('measured_seconds'), 1)} |")
    lines += ["", "Latencies in ms from exact HDR histograms merged over Locust processes "
              "(never averaged percentiles); auth p50 is the server's own Server-Timing.", ""]
    lines += method_lines(report)
    return lines


def _placement_text(placement: dict[str, Any] | None, interleave: str) -> str:
    how = ("every configuration up once, windows interleaved over them" if interleave == "windows"
           else "a fresh start per cell")
    if not placement:
        return f"Runs: {how}; CPU placement not recorded"
    if not placement.get("is_pinned"):
        return f"Runs: {how}; targets and load generator shared every CPU (not pinned)"
    return (f"Runs: {how}; targets pinned to CPUs {placement['target_cpus']}, the load "
            f"generator and the runner to {placement['generator_cpus']}")


def method_lines(report: Report) -> list[str]:
    """The method section: machine, versions, load, warnings."""
    meta = report.metadata
    machine = meta.get("machine", {})
    packages = machine.get("packages", {})
    suite = meta.get("suite", {})
    lines = ["## Method", "",
             f"- Machine: {machine.get('cpu_count')}x {machine.get('cpu_model')}, "
             f"{number((machine.get('memory_bytes') or 0) / 2**30, 1)} GiB, "
             f"{machine.get('platform')}",
             f"- Python {machine.get('python')}; " + ", ".join(
                 f"{k} {v}" for k, v in sorted(packages.items()) if v),
             f"- OpenSSL: {machine.get('openssl')}",
             f"- Git commit: {machine.get('git_commit')}",
             f"- Suite {suite.get('name')}: {len(suite.get('cells', []))} cells x "
             f"{suite.get('repeats')} repeats, interleaved; started {meta.get('started')}, "
             f"ended {meta.get('ended')}, status {meta.get('status')}",
             f"- Topology: {meta.get('topology')}",
             f"- {_placement_text(meta.get('placement'), meta.get('interleave', 'cells'))}",
             "- Each node was verified (401 without a credential, 200 with, forged credentials "
             "refused, logout behaviour) before it was measured; warm-up requests, and requests "
             "made before every user had logged in, are not counted.", ""]
    for note in meta.get("notes", []):
        lines.append(f"- Note: {note}")
    lines += ["", "### Warnings", ""]
    lines += [f"- {w}" for w in report.warnings] or ["- none"]
    return [*lines, ""]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f0f3f7} .verdict{font-weight:600} .failed{color:#a00}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0} .caption{color:#666;font-size:0.85em}
"""


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: Report, pngs: dict[str, tuple[str, bytes]],
                sections: list[tuple[list[str], list[str]]] | None = None) -> str:
    """One self-contained page: charts embedded as PNG data URIs, no external resources.

    sections: (Markdown lines, names of their charts in pngs), drawn after the charts.
    """
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>authbench report {html.escape(report.run_id)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>authbench report: {html.escape(report.run_id)}</h1>",
             f"<p class=caption>{html.escape(report.caption)}</p>",
             "<h2 id=answer>The answer</h2>",
             markdown_html(answer_section(report)),
             "<h2 id=article>The article's table, re-checked</h2>",
             _table(["row", "the article's claim", "measured here", "verdict"],
                    [[v.row, v.claim, v.measured, v.verdict] for v in report.verdicts]),
             "<h2 id=charts>Charts</h2>"]
    sections = sections or []
    placed = {name for _, names in sections for name in names}

    def figure(name: str) -> str:
        title, png = pngs[name]
        data = base64.b64encode(png).decode()
        return (f"<figure><img id=chart-{name} alt='{html.escape(title)}' "
                f"src='data:image/png;base64,{data}'></figure>")

    parts += [figure(name) for name in pngs if name not in placed]
    for lines, names in sections:
        parts.append(markdown_html(lines))
        parts += [figure(name) for name in names if name in pngs]
    cells = [[c["cell"], "ok" if c["status"] == "ok" else f"failed: {c['reason']}",
              number(c.get("rps"), 0), number(c.get("p50_ms"), 2), number(c.get("p99_ms"), 2),
              number(c.get("p99_9_ms"), 2), number(c.get("max_ms"), 2),
              number(c.get("auth_p50_ms"), 3), number(c.get("cpu_ms_per_request"), 3)]
             for c in report.cells]
    parts += ["<h2 id=details>Details</h2>",
              _table(["cell", "status", "req/s", "p50", "p99", "p99.9", "max", "auth p50",
                      "CPU ms/req"], cells,
                     ["" if c["status"] == "ok" else "failed" for c in report.cells])]
    method = method_lines(report)
    parts.append("<h2 id=method>Method</h2><ul>")
    parts += [f"<li>{html.escape(line[2:])}</li>" for line in method if line.startswith("- ")]
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def revocation_section(run: Path, report: Report
                       ) -> tuple[list[str], list[tuple[str, str, Figure]]]:
    """Lag per strategy (with its CDF), the cost of the check, storage and logout-all."""
    lag = lag_lines(report.probes)
    overhead = overhead_lines(report.frame) if (
        report.frame.get("revocation", pd.Series(dtype=str)).isin(["blocklist", "pubsub"]).any()
    ) else []
    storage, figures = revocation_storage_section(run, report.caption)
    if not lag and not overhead and not storage:
        return [], []
    lines = ["## Revocation", ""]
    if lag:
        lines += ["### How long a logged-out credential keeps working", "", *lag]
        figures = [("revocation-lag", "Revocation lag per strategy",
                    plot_lag_cdf(report.probes, report.caption)), *figures]
    if overhead:
        lines += ["### What the revocation check costs", "", *overhead]
    if storage:  # its own "## " title is this section's; its "### " parts sit under it
        lines += [line for line in storage if not line.startswith("## ")]
    return lines, figures


def faults_section(report: Report) -> tuple[list[str], list[tuple[str, str, Figure]]]:
    """Availability when the store fails: the table per mode and fault, and its chart."""
    lines = fault_lines(report.faults)
    if not lines:
        return [], []
    return (["## Availability when the store fails", "", *lines],
            [("faults", "Availability when the store fails",
              plot_fault_timelines(report.timelines, report.caption))])


def markdown_html(lines: list[str]) -> str:
    """The few Markdown forms the sections use (headings, tables, bullets, paragraphs)."""
    out: list[str] = []
    table: list[list[str]] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
            continue
        if table:
            out.append(_table(table[0], [r for r in table[1:] if not set("".join(r)) <= set("-|")]))
            table = []
        if line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")))
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<ul><li>{html.escape(line[2:])}</li></ul>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out)


def _micro_section(run: Path, caption: str) -> tuple[list[str], list[tuple[str, str, Figure]]]:
    """Lines and the chart of the micro tier, when the run folder holds micro.json."""
    path = run / "micro.json"
    if not path.exists():
        return [], []
    _, frame = load_micro(path)
    figures = []
    if (frame["group"] == "jwt").any():
        figures.append(("crypto-floor", "Crypto floor and library overhead",
                        plot_crypto_floor(frame, caption)))
    return micro_lines(frame), figures


def write_standalone_report(run: Path) -> dict[str, Path]:
    """report.md and report.html for a folder of `authbench micro` or `bench-revocation`."""
    sources = [path for path in (run / "micro.json", run / "revocation.json") if path.exists()]
    header = json.loads(sources[0].read_text())
    machine = header.get("machine", {})
    kinds = " + ".join(path.stem for path in sources)
    caption = (f"authbench {kinds} · {machine.get('cpu_count', '?')}x "
               f"{machine.get('cpu_model', '?')} · Python {machine.get('python', '?')} · "
               f"started {header.get('started', '?')}")
    micro, micro_figures = _micro_section(run, caption)
    storage, storage_figures = revocation_storage_section(run, caption)
    charts = run / "charts"
    sections: list[tuple[list[str], list[str]]] = []
    markdown_body: list[str] = []
    pngs: dict[str, tuple[str, bytes]] = {}
    for lines, figures in ((micro, micro_figures), (storage, storage_figures)):
        names = []
        for name, title, figure in figures:
            paths = plots.save_figure(figure, charts, name)
            pngs[name] = (title, paths["png"].read_bytes())
            lines = [*lines, f"![{title}]({paths['svg'].relative_to(run)})", ""]
            names.append(name)
        markdown_body += lines
        sections.append((lines, names))
    title = f"authbench {kinds}: {run.name}"
    markdown = run / "report.md"
    markdown.write_text("\n".join([f"# {title}", "", f"_{caption}_", "", *markdown_body]))
    body = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
            f"{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>", f"<p class=caption>{html.escape(caption)}</p>"]
    for lines, names in sections:
        body.append(markdown_html([line for line in lines if not line.startswith("![")]))
        for name in names:
            chart_title, png = pngs[name]
            body.append(f"<figure><img id=chart-{name} alt='{html.escape(chart_title)}' "
                        f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
                        "</figure>")
    body.append("</body></html>")
    page = run / "report.html"
    page.write_text("\n".join(body))
    return {"markdown": markdown, "html": page, "charts": charts}


def write_report(run: Path) -> dict[str, Path]:
    """Rebuild report.md, report.html and charts/ in the run folder from its raw files."""
    if not (run / "metadata.json").exists() and (
            (run / "micro.json").exists() or (run / "revocation.json").exists()):
        return write_standalone_report(run)
    report = build_report(run)
    charts = run / "charts"
    images: dict[str, str] = {}
    pngs: dict[str, tuple[str, bytes]] = {}
    revocation, revocation_figures = revocation_section(run, report)
    faults, fault_figures = faults_section(report)
    micro, micro_figures = _micro_section(run, report.caption)
    section_images: dict[str, list[str]] = {}
    for name, title, figure in [*charts_for(report), *revocation_figures, *fault_figures,
                                *micro_figures]:
        paths = plots.save_figure(figure, charts, name)
        pngs[name] = (title, paths["png"].read_bytes())
        image = f"![{title}]({paths['svg'].relative_to(run)})"
        if name in {n for n, _, _ in revocation_figures}:
            section_images.setdefault("revocation", []).append(image)
        elif name in {n for n, _, _ in fault_figures}:
            section_images.setdefault("faults", []).append(image)
        elif name in {n for n, _, _ in micro_figures}:
            section_images.setdefault("micro", []).append(image)
        else:
            images[title] = str(paths["svg"].relative_to(run))
    markdown = run / "report.md"
    extra: list[str] = []
    for key, lines in (("revocation", revocation), ("faults", faults), ("micro", micro)):
        if lines:
            extra += [*lines, *(f"{i}\n" for i in section_images.get(key, []))]
    body = markdown_lines(report, images)
    at = body.index("## Configurations") if "## Configurations" in body else len(body)
    markdown.write_text("\n".join(body[:at] + extra + body[at:]))
    page = run / "report.html"
    page.write_text(render_html(report, pngs, [
        (revocation, [n for n, _, _ in revocation_figures]),
        (faults, [n for n, _, _ in fault_figures]),
        (micro, [n for n, _, _ in micro_figures]),
    ]))
    return {"markdown": markdown, "html": page, "charts": charts}
