"""The report's section "When the answer changes": each break-even point with its figures.

One table per question (analysis.verdict.breakeven's QUESTIONS): between what, the break-even,
its basis, the figures it rests on; then what this run could not give, and the command
that measures it. Shown when the run gives at least one point; no chart (a break-even
is one figure, and its inputs are drawn in the sections they come from).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.verdict.breakeven import (
    ALGORITHM,
    BLOCKLIST,
    DISTANCE,
    NODES,
    QUESTIONS,
    BreakEven,
    algorithm,
    distance,
)
from analysis.verdict.breakeven_store import blocklist_rate, nodes_to_cap

Section = tuple[list[str], list[tuple[str, str, Figure]]]
TITLE = "## When the answer changes"
HEADINGS = {
    DISTANCE: "The store's distance: from how far away a session's lookup adds more latency "
              "than a JWT verify",
    NODES: "Nodes: from how many one store caps sessions",
    ALGORITHM: "The algorithm: from which one a JWT verify costs more CPU than a store lookup",
    BLOCKLIST: "The request rate: from which a blocklist's store is the bottleneck",
}
INTRO = ("Where each of the answers above would flip, worked out from this run's own "
         "figures. Each break-even says its basis: measured (the run saw the crossing) or "
         "computed (from figures measured apart: an idle round trip, a CPU per request, the "
         "store's ceiling measured alone), and the figures it rests on, medians with the "
         "range over windows or repeats in brackets. Where this run did not measure what a "
         "break-even needs, the command that measures it is named instead.")


def break_evens(frame: pd.DataFrame, run: Path | None) -> list[BreakEven]:
    """Every break-even point of a run, in QUESTIONS' order; [] for an empty frame."""
    if frame.empty or "mode" not in frame:
        return []
    return [*distance(frame), *nodes_to_cap(frame, run), *algorithm(frame, run),
            *blocklist_rate(frame, run)]


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell (report_html splits cells on ' | ')."""
    return text.replace("|", "/")


def question_lines(question: str, points: list[BreakEven]) -> list[str]:
    """One question's table, and what this run could not give for it."""
    lines = [f"### {HEADINGS[question]}", ""]
    measured = [p for p in points if p.is_measured]
    if measured:
        lines += ["| between | break-even | basis | the figures it rests on |",
                  "|---|---|---|---|"]
        lines += [f"| {_cell(p.subject)} | {_cell(p.point)} | {_cell(p.basis)} | "
                  f"{_cell('; '.join(p.rests_on))} |" for p in measured]
        lines.append("")
    lines += [f"- Not measured in this run: {p.subject}. {'; '.join(p.rests_on)}."
              for p in points if not p.is_measured]
    return lines if lines[-1] == "" else [*lines, ""]


def breakeven_section(frame: pd.DataFrame, run: Path | None, caption: str) -> Section:
    """Markdown lines titled "## When the answer changes" (no chart: see the module);
    nothing when the run gives no break-even at all."""
    del caption  # no chart to caption
    points = break_evens(frame, run)
    if not any(p.is_measured for p in points):
        return [], []
    lines = [TITLE, "", INTRO, ""]
    for question in QUESTIONS:
        lines += question_lines(question, [p for p in points if p.question == question])
    return lines, []
