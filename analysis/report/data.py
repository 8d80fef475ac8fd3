"""What a report shows, computed once from a run's raw files: the Report its sections render."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.cost.configs import config_table, spread
from analysis.cost.speed import speed_lines
from analysis.cost.table import cost_table, sanity_warnings
from analysis.data.endpoints import ME
from analysis.data.load import load_metadata, load_probes, load_run, load_timelines
from analysis.latency.equal_load import equal_load_of, generator_warnings
from analysis.report.api import with_remote_nodes
from analysis.report.scaleout import with_scaleout
from analysis.report.summary import cell_rows
from analysis.store.distance import rtt_effects, rtt_table, with_store_rtt
from analysis.store.state import StorageFigures, state, storage, storage_figures, transport
from analysis.verdict.availability import availability, fault_table
from analysis.verdict.table import (
    NOT_MEASURED,
    Verdict,
    hybrid,
    performance,
    revocation,
    scalability,
    security,
)

SPREAD_WARNING = 0.10  # coefficient of variation of req/s over repeats
WINDOW_WARNING = 0.8  # measured seconds below this share of the planned duration


@dataclass(frozen=True)
class Report:
    """Everything a renderer needs, computed once from the raw files."""

    run_id: str
    metadata: dict[str, Any]
    frame: pd.DataFrame
    probes: pd.DataFrame  # revocation probe watches (analysis.data.load.load_probes)
    configs: pd.DataFrame
    costs: pd.DataFrame  # analysis.cost.table.cost_table: the answer's figures
    verdicts: list[Verdict]
    cells: list[dict[str, Any]]
    warnings: list[str]
    caption: str
    timelines: pd.DataFrame = field(default_factory=pd.DataFrame)  # load_timelines
    faults: pd.DataFrame = field(default_factory=pd.DataFrame)  # availability.fault_table
    equal_load: pd.DataFrame = field(default_factory=pd.DataFrame)  # openmodel.equal_load_table
    speed: list[str] = field(default_factory=list)  # analysis.cost.speed.speed_lines


def article_table(frame: pd.DataFrame, probes: pd.DataFrame | None = None,
                  faults: pd.DataFrame | None = None,
                  figures: StorageFigures | None = None) -> list[Verdict]:
    """Every row of the article's table, in its order, plus the hybrid approach and
    availability when the store fails (faults: analysis.verdict.availability.fault_table; figures:
    analysis.store.state.storage_figures)."""
    figures = figures or StorageFigures()
    cross, mobile = transport(frame)
    costs = cost_table(frame)
    return [state(figures), storage(figures), scalability(frame),
            revocation(frame, probes, costs), performance(frame, costs), cross, security(frame),
            mobile, hybrid(frame, costs), availability(faults)]


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


def _caption(metadata: dict[str, Any], frame: pd.DataFrame) -> str:
    """One line under every chart and the title: the run, its load, the machine."""
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
    return (f"run {metadata['run_id']} · suite {metadata['suite']['name']}{load} · "
            f"{machine.get('cpu_count', '?')}x {machine.get('cpu_model', '?')} · "
            f"Python {machine.get('python', '?')} · started {metadata.get('started', '?')}")


EXTRA_COMMANDS = {"revocation-storage": "authbench bench-revocation --into {run}",
                  "store-ceiling": "authbench bench-store --into {run}"}
ARTICLE_COMMAND = "authbench run article"


def without_faults(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells without an injected fault, when the run has any: a window with an outage
    in it is availability, not cost or lag (a faults run keeps its cells)."""
    if frame.empty or "fault" not in frame:
        return frame
    calm = frame[frame["fault"].fillna("none") == "none"]
    return calm if not calm.empty else frame


def why_left_out(only: list[str] | None) -> str:
    """Why an article run has no figure for a row: its cells were left out with --only
    (only: the filters, from metadata.json), or a cell failed."""
    return (f"`--only {' '.join(only)}` left its cells out" if only else
            "a cell failed or a service did not answer: see the warnings")


def named_left_out(verdicts: list[Verdict], suite: str, only: list[str] | None = None
                   ) -> list[Verdict]:
    """A row this run did not measure names the command that does, or, in an article run,
    why it is missing."""
    how = why_left_out(only) if suite == "article" else f"`{ARTICLE_COMMAND}` measures it"
    return [Verdict(v.row, v.claim, v.measured, f"{NOT_MEASURED}: {how}")
            if v.verdict == NOT_MEASURED else v for v in verdicts]


def with_equal_load(verdict: Verdict, frame: pd.DataFrame) -> Verdict:
    """The Performance verdict, with the latency a session store's round trip added at equal
    offered load (analysis.store.distance), where the run moved its store away."""
    table = rtt_table(frame)
    if verdict.verdict.startswith(NOT_MEASURED) or table.empty:
        return verdict
    said = []
    for effect in rtt_effects(table):
        if effect.label.startswith("session") and effect.added_ms:
            rtt, added = list(effect.added_ms.items())[-1]
            text = added.text(2)
            said.append(f"a {effect.label} lookup {rtt:g} ms away added "
                        f"{text if text.startswith('-') else '+' + text} ms of p50"
                        + ("" if added.n > 1 else " (one window each, so no range)"))
    if not said:
        return verdict
    return replace(verdict, verdict=f"{verdict.verdict}; at equal offered load, {'; '.join(said)}")


def build_report(run: Path) -> Report:
    """Load the run and compute every table of the report."""
    metadata = load_metadata(run)
    frame = load_run(run)
    measured = without_faults(frame)
    probes = load_probes(run)
    if not probes.empty and "cell" in measured:  # lags from calm windows, when there are any
        calm = probes[probes["cell"].isin(set(measured["cell"]))]
        probes = calm if not calm.empty else probes
    timelines = load_timelines(run)
    faults = fault_table(timelines, frame)
    costs = cost_table(measured)
    closed = measured[measured["rate_spec"].fillna("") == ""] if "rate_spec" in measured \
        else measured
    verdicts = [with_equal_load(with_store_rtt(v, measured), measured)
                if v.row == "Performance" else
                with_remote_nodes(with_scaleout(v, measured, run), metadata)
                if v.row == "Scalability" else v
                for v in article_table(closed, probes, faults, storage_figures(run, measured))]
    return Report(
        run_id=metadata["run_id"], metadata=metadata, frame=frame, probes=probes,
        configs=config_table(run, frame), costs=costs,
        verdicts=named_left_out(verdicts, str(metadata.get("suite", {}).get("name", "")),
                                metadata.get("suite", {}).get("only")),
        cells=cell_rows(frame),
        warnings=sanity_warnings(costs) + method_warnings(frame) + generator_warnings(frame) + [
            f"the {extra} extra failed, so its section is missing: {why} (measure it with "
            f"`{EXTRA_COMMANDS.get(extra, 'authbench run --resume {run}').format(run=run)}`)"
            for extra, why in metadata.get("extras_failed", {}).items()],
        caption=_caption(metadata, frame), timelines=timelines, faults=faults,
        equal_load=equal_load_of(run, frame), speed=speed_lines(run),
    )
