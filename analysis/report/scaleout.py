"""The report's scale-out section and its Scalability row: the model on a run's figures.

Shown for any run with a Redis or PostgreSQL configuration (what a shared store caps),
or with several node counts. Every figure is labelled measured or predicted.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.report.formatting import number
from analysis.store.scaleout import STORE, STORE_NAMES
from analysis.store.scaleout_data import (
    SHARED_STORES,
    ScaleoutInputs,
    predictions,
    scaleout_inputs,
    term_checks,
)
from analysis.store.scaleout_report import plot_scaleout, scalability_summary
from analysis.verdict.table import NOT_MEASURED, Verdict

Section = tuple[list[str], list[tuple[str, str, Figure]]]
TABLE_NODES = (1, 2, 4, 8, 16, 32, 64, 128)
PREDICTED_ONLY = "not measured over nodes in this run"  # the model alone spoke


def is_relevant(frame: pd.DataFrame) -> bool:
    """A run the model speaks for: a shared store ran, or several node counts did."""
    if frame.empty or "store" not in frame:
        return False
    ok = frame[frame["status"] == "ok"]
    return bool(ok["store"].isin(SHARED_STORES).any() or ok["nodes"].nunique() > 1)


def _ceiling_lines(inputs: ScaleoutInputs) -> list[str]:
    if inputs.ceiling is None:
        return ["The store's ceiling was not measured in this run (the `store-ceiling` extra, "
                "or `authbench bench-store --into <run>`): configurations that read a shared "
                "store on every request are left out of the prediction.", ""]
    return [f"- {line}" for line in inputs.ceiling.describe()] + [""]


def scaleout_section(frame: pd.DataFrame, run: Path | None, caption: str) -> Section:
    """The model's table (req/s predicted at 1..128 nodes), its checks, and the chart."""
    if not is_relevant(frame):
        return [], []
    inputs = scaleout_inputs(frame, run)
    predicted = predictions(inputs)
    if not predicted:
        return [], []
    lines = ["## Scaling out: many nodes sharing one store", "",
             "Predicted cluster throughput X(N) = min(N x one node's req/s, the store's "
             "ceiling / its operations per request). One node's req/s is 10^6 / the answer's "
             "target µs (the target's CPU alone, on one core: in a deployment the store runs "
             "on a machine of its own, and its CPU is the store's term); the ceiling was "
             "measured with the store alone on a core. Node counts this run did not measure "
             "are extrapolated.", "",
             *_ceiling_lines(inputs),
             "| configuration | one node req/s (10^6 / target µs) | store ops/request | "
             "store caps at | "
             + " | ".join(f"N={n}" for n in TABLE_NODES) + " |",
             "|---" * (4 + len(TABLE_NODES)) + "|"]
    for p in predicted:
        cap = "never" if p.cap_nodes is None else f"{p.cap_nodes} nodes"
        lines.append(f"| {p.mode.label} | {number(p.node_rps, 0)} | "
                     f"{number(p.mode.store_ops_per_request, 2)} | {cap} | "
                     + " | ".join(number(p.rps_at(n), 0) for n in TABLE_NODES) + " |")
    checks = term_checks(inputs)
    lines += ["", *(f"- {s}" for s in scalability_summary(predicted, measured=inputs.measured))]
    if checks:
        lines += ["", "Each term against an independent measurement on this machine:", "",
                  *(f"- {'store' if c.term == STORE else 'node'} term, {c.text}" for c in checks)]
    lines.append("")
    return lines, [("scaleout", "Scaling out: predicted and measured throughput against nodes",
                    plot_scaleout(predicted, measured=inputs.measured, caption=caption))]


def with_scaleout(verdict: Verdict, frame: pd.DataFrame, run: Path | None) -> Verdict:
    """The Scalability row, with the model: what caps sessions, at how many nodes."""
    if not is_relevant(frame):
        return verdict
    inputs = scaleout_inputs(frame, run)
    predicted = predictions(inputs)
    capped = [p for p in predicted if p.cap_nodes is not None and p.store is not None]
    if not capped:
        return verdict
    said = "; ".join(
        f"one {STORE_NAMES.get(p.store.kind, p.store.kind) if p.store else ''} caps "
        f"{p.mode.label} at about {p.cap_nodes} nodes ({number(p.store_rps, 0)} req/s)"
        for p in capped)
    free = [p.mode.label for p in predicted if p.mode.store_ops_per_request == 0]
    free_text = f"; {' and '.join(free)} read no store per request and grow with nodes" \
        if free else ""
    model = (f"Predicted (the scale-out model, not measured) from one node's CPU per request "
             f"and the store's ceiling measured alone on a core, beyond the nodes that ran: "
             f"{said}{free_text}.")
    if verdict.verdict == NOT_MEASURED:
        holds = any(p.mode.label.startswith("session") for p in capped)
        return Verdict(verdict.row, verdict.claim, model,
                       ("holds, predicted: a shared store caps sessions" if holds else
                        "depends on the store's ceiling") + f" ({said}){free_text}; "
                       f"{PREDICTED_ONLY}")
    nodes = int(frame.loc[frame["status"] == "ok", "nodes"].max())
    return Verdict(verdict.row, verdict.claim, f"{verdict.measured}. {model}",
                   f"{verdict.verdict} (measured on up to {nodes} nodes); predicted beyond "
                   f"them: {said}{free_text}")
