"""The report's sections as Markdown lines, and the charts each one draws.

The report leads with what its suite is for (top_sections): a run of the article suite
with the article's table re-checked, a revocation run with the lag per strategy, a
faults run with availability when the store fails, any other with the answer (cost per
request per configuration, then what the run varied). Then the rest of those, the
charts, the extra sections a run has data for (revocation, faults, the micro tier), the
per-configuration and per-cell tables, and the method. Sections return lines; report.py
writes them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis.cost.micro import load_micro, micro_lines, plot_crypto_floor
from analysis.data.endpoints import ME
from analysis.report import plots
from analysis.report.answer import answer_lines
from analysis.report.api import api_lines
from analysis.report.data import ARTICLE_COMMAND, Report, why_left_out, without_faults
from analysis.report.formatting import number
from analysis.report.scaleout import PREDICTED_ONLY
from analysis.revocation.cost import overhead_lines
from analysis.revocation.lag import lag_lines, plot_lag_cdf
from analysis.revocation.storage import revocation_storage_section
from analysis.store.distance import rtt_sentences, rtt_table
from analysis.verdict.availability import fault_lines, plot_fault_timelines
from analysis.verdict.table import NOT_MEASURED

Chart = Callable[[pd.DataFrame, str], Figure]
# Markdown lines, and (file name, title, figure) for each of their charts.
Section = tuple[list[str], list[tuple[str, str, Figure]]]
# What a run is for, by what it measured: the section that answers it leads the report.
ARTICLE, REVOCATION, FAULTS, COST = "article", "revocation", "faults", "cost"
TITLES = {"answer": "The answer", "article": "The article's table, re-checked",
          "lag": "How long a logged-out credential keeps working",
          "availability": "Availability when the store fails"}


def purpose(report: Report) -> str:
    """ARTICLE, REVOCATION, FAULTS or COST: the shipped suite's name when it is one of
    them, else what most of the run's cells measured."""
    name = str(report.metadata.get("suite", {}).get("name", ""))
    if name in (ARTICLE, REVOCATION, FAULTS):
        return name
    cells = report.frame.drop_duplicates("cell") if "cell" in report.frame else report.frame
    if cells.empty or "scenario" not in cells:
        return COST
    faulted = cells["fault"].fillna("none") != "none" if "fault" in cells else cells["cell"] == ""
    if not report.faults.empty and faulted.all():
        return FAULTS
    if not report.probes.empty and (cells["scenario"] == "revocation").mean() > 0.5:
        return REVOCATION
    return COST


def purpose_line(report: Report) -> str:
    """One sentence: the suite, and what it is for (its description's first sentence)."""
    suite = report.metadata.get("suite", {})
    api = report.metadata.get("api")
    if isinstance(api, dict):  # the suite's description is of the twins: say what ran
        return (f"What this run is for (suite {suite.get('name', '?')}, its load over an API): "
                f"{api.get('name', 'the API')}'s variants compared, each measured as the "
                "twins are.")
    words = " ".join(str(suite.get("description", "")).split())
    first = words.split(". ")[0].rstrip(".")
    return f"What this run is for (suite {suite.get('name', '?')}): " + (
        f"{first}." if first else "a suite without a description.")


def left_out(report: Report) -> list[str]:
    """The article's rows this run did not measure."""
    return [v.row for v in report.verdicts if v.verdict.startswith(NOT_MEASURED)]


def article_lines(report: Report) -> list[str]:
    """The article's table re-checked, and the rows this run left out with the command
    that answers them."""
    lines = ["| row | the article's claim | measured here | verdict |", "|---|---|---|---|",
             *(f"| {v.row} | {v.claim} | {v.measured} | {v.verdict} |"
               for v in report.verdicts), ""]
    missing = left_out(report)
    predicted = [v.row for v in report.verdicts if v.verdict.endswith(PREDICTED_ONLY)]
    if (missing or predicted) and purpose(report) != ARTICLE:
        said = [f"leaves out {', '.join(missing)}"] if missing else []
        said += [f"answers {', '.join(predicted)} by the scale-out model alone"] if predicted \
            else []
        lines += [f"This run {' and '.join(said)}: `{ARTICLE_COMMAND}` measures every row "
                  "(about 9 minutes on 2 cores).", ""]
    elif missing:
        why = why_left_out(report.metadata.get("suite", {}).get("only"))
        lines += [f"Not measured: {', '.join(missing)} ({why}).", ""]
    return lines


def top_sections(report: Report) -> list[tuple[str, list[str]]]:
    """(id, Markdown lines) of the sections the report opens with, what the run is for
    first (TITLES names them)."""
    answer = ("answer", answer_section(report))
    article = ("article", article_lines(report))
    kind = purpose(report)
    lag = lag_lines(report.probes)
    if kind == REVOCATION and lag:
        return [("lag", lag), answer, article]
    availability = fault_lines(report.faults)
    if kind == FAULTS and availability:
        return [("availability", availability), answer, article]
    if kind == ARTICLE:
        return [article, answer]
    return [answer, article]


def answer_section(report: Report) -> list[str]:
    """The answer's Markdown lines, from the run's costs and per-cell facts."""
    facts = report.frame.drop_duplicates("cell") if not report.frame.empty else report.frame
    lines = answer_lines(report.costs, facts, report.equal_load)
    distance = rtt_sentences(rtt_table(report.frame), is_brief=True)
    if distance:  # a run that moved its store away answers that first
        lines = ["The store across a network, at equal offered load (every round trip in the "
                 "section of that name below):", "", *(f"- {line}" for line in distance), "",
                 *lines]
    # How far the machine's own speed moved: what absolute figures and latency rest on.
    speed = ["", *report.speed, ""] if report.speed else []
    return api_lines(report.metadata, report.frame) + lines + speed


def charts_for(report: Report) -> list[tuple[str, str, Figure]]:
    """(file name, title, figure) for the charts this run has data for: windows with an
    injected fault are the availability section's, and nodes are compared on plain reads
    when the run has them (probe and fault cells fail requests on purpose)."""
    frame, caption = without_faults(report.frame), report.caption
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
    reads = frame[frame["scenario"] == "read"] if (hot["scenario"] == "read").any() else frame
    if hot["nodes"].nunique() > 1:
        charts.append(("scaling", "Scaling out",
                       lambda _, caption: plots.plot_scaling(reads, caption)))
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
             purpose_line(report), ""]
    for name, section in top_sections(report):
        lines += [f"## {TITLES[name]}", "", *section]
    lines += ["## Charts", ""]
    for name, path in images.items():
        lines += [f"![{name}]({path})", ""]
    lines += ["## Configurations", "", "Percentiles from the histograms merged over the "
              "repeats (at a fixed rate, over the windows the answer keeps: the same figures); "
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


def revocation_section(run: Path, report: Report) -> Section:
    """Lag per strategy (with its CDF), the cost of the check, storage and logout-all."""
    lag = lag_lines(report.probes)
    if lag and purpose(report) == REVOCATION:  # the table opens the report: not twice
        lag = [f"The table per strategy opens this report ({TITLES['lag']}); the chart "
               "shows when every node had rejected each logged-out credential.", ""]
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


def faults_section(report: Report) -> Section:
    """Availability when the store fails: the table per mode and fault, and its chart."""
    lines = fault_lines(report.faults)
    if not lines:
        return [], []
    if purpose(report) == FAULTS:  # the table opens the report: not twice
        lines = ["The table per mode and fault opens this report; the chart shows each "
                 "second of every fault's window.", ""]
    return (["## Availability when the store fails", "", *lines],
            [("faults", "Availability when the store fails",
              plot_fault_timelines(report.timelines, report.caption))])


def micro_section(run: Path, caption: str) -> Section:
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
