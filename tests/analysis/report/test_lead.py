"""Each report leads with what its suite is for: the article's table for an article run, the
lag per strategy for a revocation run, availability for a faults run, the answer otherwise;
a run that leaves rows out names them and the one command that measures them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.data.load import load_probes
from analysis.report import plots
from analysis.report.data import (
    Report,
    build_report,
    named_left_out,
    with_equal_load,
    without_faults,
)
from analysis.report.html import render_html
from analysis.report.scaleout import PREDICTED_ONLY
from analysis.report.sections import (
    ARTICLE,
    COST,
    FAULTS,
    REVOCATION,
    article_lines,
    charts_for,
    faults_section,
    markdown_lines,
    purpose,
    purpose_line,
    revocation_section,
    top_sections,
)
from analysis.verdict.availability import fault_table
from analysis.verdict.table import NOT_MEASURED, Verdict
from tests.analysis.fixtures import ROOT, build_probes
from tests.analysis.store.test_distance import frame as rtt_frame
from tests.analysis.verdict.test_availability import JWT, SESSION


@pytest.fixture(scope="module")
def tiny() -> Report:
    """The tiny run's report data (suite "tiny": cost cells only), built once."""
    return build_report(ROOT / "tiny")


def as_suite(report: Report, name: str, description: str = "", **changes: Any) -> Report:
    suite = {**report.metadata["suite"], "name": name, "description": description}
    return replace(report, metadata={**report.metadata, "suite": suite}, **changes)


def ids(report: Report) -> list[str]:
    return [name for name, _ in top_sections(report)]


def test_a_cost_run_leads_with_the_answer_and_names_what_it_left_out(tiny: Report) -> None:
    assert purpose(tiny) == COST and ids(tiny) == ["answer", "article"]
    state = next(v for v in tiny.verdicts if v.row == "State")
    assert state.verdict == f"{NOT_MEASURED}: `authbench run article` measures it"
    lines = article_lines(tiny)
    assert ("This run leaves out State, Storage, Hybrid, Availability when the store fails: "
            "`authbench run article` measures every row (about 9 minutes on 2 cores).") in lines
    assert lines[0] == "| row | the article's claim | measured here | verdict |"
    # quick with Redis: Scalability from the model alone, named beside the rows left out.
    predicted = Verdict("Scalability", "c", "m", f"holds, predicted (...); {PREDICTED_ONLY}")
    quick = replace(tiny, verdicts=[state, predicted])
    assert article_lines(quick)[-2] == (
        "This run leaves out State and answers Scalability by the scale-out model alone: "
        "`authbench run article` measures every row (about 9 minutes on 2 cores).")


def test_an_article_run_leads_with_the_verdict_table(tiny: Report) -> None:
    article = as_suite(tiny, "article", "Every row of the article's table, measured in one run. "
                       "More words.")
    assert purpose(article) == ARTICLE and ids(article) == ["article", "answer"]
    assert purpose_line(article) == ("What this run is for (suite article): Every row of the "
                                     "article's table, measured in one run.")
    # It measures every row by design: what is missing is a failure, not another suite's job.
    assert not any("authbench run article` measures every row" in line
                   for line in article_lines(article))
    markdown = markdown_lines(article, {})
    assert markdown.index("## The article's table, re-checked") < markdown.index("## The answer")
    assert markdown[4] == purpose_line(article)
    page = render_html(article, {})
    assert page.index("<h2 id=article>") < page.index("<h2 id=answer>") < page.index(
        "<h2 id=charts>")
    assert "<p class=purpose>What this run is for (suite article)" in page
    assert "<td>Performance</td>" in page and "| Performance |" not in page
    # Each verdict's outcome stands out: the words before its first colon.
    assert ("<td class=verdict><strong>not measured in this run</strong>: <code>authbench run "
            "article</code> measures it</td>") in page
    # ... up to its first bracket when that comes first; the rest is not bold.
    assert "<strong>holds for the hot path</strong> (" in render_html(replace(
        article, verdicts=[Verdict("Hybrid", "c", "m", "holds for the hot path (a: b); c")]), {})


def test_a_revocation_run_leads_with_the_lag_per_strategy(tiny: Report, tmp_path: Path) -> None:
    probes = load_probes(build_probes(tmp_path))
    run = as_suite(tiny, "revocation", probes=probes)
    assert purpose(run) == REVOCATION and ids(run) == ["lag", "answer", "article"]
    lag = dict(top_sections(run))["lag"]
    assert lag[0].startswith("Time from the logout's answer to the first rejected replay")
    assert any(line.startswith("| session in redis, 2 nodes · node that logged out | 4 |")
               for line in lag)
    lines, charts = revocation_section(tmp_path, run)  # the table is not shown twice
    assert not any(line.startswith("| session in redis") for line in lines)
    assert any("opens this report" in line for line in lines)
    assert [name for name, _, _ in charts] == ["revocation-lag"]
    assert markdown_lines(run, {}).index("## How long a logged-out credential keeps working") \
        < markdown_lines(run, {}).index("## The answer")
    # The same probes in a cost run: the lag table stays in its section.
    cost = replace(tiny, probes=probes)
    assert purpose(cost) == COST
    assert any(line.startswith("| session in redis") for line in revocation_section(
        tmp_path, cost)[0])


def test_a_faults_run_leads_with_availability(tiny: Report) -> None:
    timelines = pd.concat([SESSION, JWT])
    run = as_suite(tiny, "faults", faults=fault_table(timelines), timelines=timelines)
    assert purpose(run) == FAULTS and ids(run) == ["availability", "answer", "article"]
    table = dict(top_sections(run))["availability"]
    assert any(line.startswith("| Redis stopped, restarted with its data | session in redis")
               for line in table)
    lines = faults_section(run)[0]
    assert "## Availability when the store fails" in lines
    assert not any(line.startswith("| Redis stopped") for line in lines)


def test_a_suite_of_its_own_is_read_by_what_its_cells_measured(tiny: Report,
                                                               tmp_path: Path) -> None:
    faults = fault_table(pd.concat([SESSION, JWT]))
    every_cell_faulted = tiny.frame.assign(fault="redis-restart")
    assert purpose(as_suite(tiny, "mine", faults=faults, frame=every_cell_faulted)) == FAULTS
    assert purpose(as_suite(tiny, "mine", faults=faults)) == COST  # most cells had no fault
    probes = load_probes(build_probes(tmp_path))
    probing = tiny.frame.assign(scenario="revocation")
    assert purpose(as_suite(tiny, "mine", probes=probes, frame=probing)) == REVOCATION
    assert purpose(as_suite(tiny, "mine", probes=probes)) == COST


def test_a_row_left_out_names_the_command_unless_the_run_was_the_article() -> None:
    rows = [Verdict("State", "c", "m", NOT_MEASURED), Verdict("Security", "c", "m", "holds")]
    quick = named_left_out(rows, "quick")
    assert quick[0].verdict == "not measured in this run: `authbench run article` measures it"
    assert quick[1] == rows[1]
    article = named_left_out(rows, "article")
    assert article[0].verdict == ("not measured in this run: a cell failed or a service did "
                                  "not answer: see the warnings")
    only = named_left_out(rows, "article", ["scenario=faults"])
    assert only[0].verdict == ("not measured in this run: `--only scenario=faults` left its "
                               "cells out")
    assert only[1] == rows[1]


def test_cost_and_lag_come_from_windows_without_a_fault_when_there_are_any() -> None:
    frame = pd.DataFrame({"cell": ["a", "b"], "fault": ["none", "redis-restart"]})
    assert list(without_faults(frame)["cell"]) == ["a"]
    every = frame.assign(fault="redis-slow")
    assert without_faults(every) is every  # a faults run keeps its cells
    assert without_faults(pd.DataFrame()).empty


def test_the_performance_verdict_cites_what_the_round_trip_added_at_equal_load() -> None:
    measured = Verdict("Performance", "c", "m", "holds: more (CPU per request: ...)")
    row = with_equal_load(measured, rtt_frame())
    assert row.verdict == ("holds: more (CPU per request: ...); at equal offered load, a session "
                           "(redis) lookup 2 ms away added +2.00 (1.96 to 2.04) ms of p50")
    assert row.measured == "m"
    one = rtt_frame()[lambda f: f["repeat"] == 1]  # one window per round trip: no range
    assert with_equal_load(measured, one).verdict.endswith(
        "added +2.00 ms of p50 (one window each, so no range)")
    left_out = Verdict("Performance", "c", "m", NOT_MEASURED)
    assert with_equal_load(left_out, rtt_frame()) == left_out
    assert with_equal_load(measured, rtt_frame().assign(store_rtt_ms=0.0)) == measured


def test_charts_leave_out_fault_windows_and_compare_nodes_on_plain_reads(
        tiny: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, pd.DataFrame] = {}

    def recorder(name: str) -> Any:
        def plot(frame: pd.DataFrame, caption: str) -> Figure:
            seen[name] = frame
            return Figure()
        return plot

    for name in ("plot_throughput_by_config", "plot_scaling", "plot_where_time_goes",
                 "plot_credential_bytes", "plot_latency_percentiles",
                 "plot_latency_vs_sessions"):
        monkeypatch.setattr(plots, name, recorder(name))
    cells = sorted(set(tiny.frame["cell"]))
    faulted, probing = cells[0], cells[4]  # the floor, and a 2-node JWT cell
    frame = tiny.frame.assign(
        fault=["redis-restart" if c == faulted else "none" for c in tiny.frame["cell"]],
        scenario=["revocation" if c == probing else s
                  for c, s in zip(tiny.frame["cell"], tiny.frame["scenario"], strict=True)])
    names = [name for name, _, _ in charts_for(replace(tiny, frame=frame))]
    assert "scaling" in names and "throughput" in names
    assert faulted not in set(seen["plot_throughput_by_config"]["cell"])
    assert probing in set(seen["plot_throughput_by_config"]["cell"])
    assert probing not in set(seen["plot_scaling"]["cell"])
    assert set(seen["plot_scaling"]["scenario"]) == {"read"}


def test_nodes_on_other_hosts_are_named_in_the_scalability_row() -> None:
    from analysis.report.api import api_lines, with_remote_nodes
    places = [{"host": "10.231.0.3", "is_local": False, "cpu": "not measured: on another host"},
              {"host": "10.231.0.4", "is_local": False, "cpu": "not measured: on another host"}]
    metadata = {"api": {"name": "twins", "file": "twins.toml", "variants": [
        {"name": "session", "kind": "session", "cpu_claimed": False, "node_places": places}]}}
    row = Verdict("Scalability", "claim", "Measured: 0.0% failed on 2 nodes.", "holds")
    said = with_remote_nodes(row, metadata).measured
    assert said == ("Measured: 0.0% failed on 2 nodes. Nodes ran on other hosts (10.231.0.3, "
                    "10.231.0.4): their requests and failures were measured from here, their "
                    "CPU was not (no cost per node, so no scale-out prediction from it).")
    local = {"api": {"variants": [{"name": "s", "node_places": [{"host": "127.0.0.1",
                                                                  "is_local": True}]}]}}
    assert with_remote_nodes(row, local) == row
    table = api_lines(metadata, pd.DataFrame({"api": [], "revoked_after_logout": []}))
    assert any(line.endswith("| not measured: on another host (10.231.0.3, 10.231.0.4) |")
               for line in table)
