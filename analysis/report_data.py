"""What a report shows, computed once from a run's raw files: the Report its sections render."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.costs import cost_table, sanity_warnings
from analysis.endpoints import ME
from analysis.faults import fault_table
from analysis.load import load_metadata, load_probes, load_run, load_timelines
from analysis.openmodel import equal_load_table, generator_warnings
from analysis.scaleout_section import with_scaleout
from analysis.store_distance import with_store_rtt
from analysis.summaries import config_table, spread
from analysis.summary import cell_rows
from analysis.verdicts import Verdict, article_table

SPREAD_WARNING = 0.10  # coefficient of variation of req/s over repeats
WINDOW_WARNING = 0.8  # measured seconds below this share of the planned duration


@dataclass(frozen=True)
class Report:
    """Everything a renderer needs, computed once from the raw files."""

    run_id: str
    metadata: dict[str, Any]
    frame: pd.DataFrame
    probes: pd.DataFrame  # revocation probe watches (analysis.load.load_probes)
    configs: pd.DataFrame
    costs: pd.DataFrame  # analysis.costs.cost_table: the answer's figures
    verdicts: list[Verdict]
    cells: list[dict[str, Any]]
    warnings: list[str]
    caption: str
    timelines: pd.DataFrame = field(default_factory=pd.DataFrame)  # load_timelines
    faults: pd.DataFrame = field(default_factory=pd.DataFrame)  # analysis.faults.fault_table
    equal_load: pd.DataFrame = field(default_factory=pd.DataFrame)  # openmodel.equal_load_table


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


def build_report(run: Path) -> Report:
    """Load the run and compute every table of the report."""
    metadata = load_metadata(run)
    frame = load_run(run)
    probes = load_probes(run)
    timelines = load_timelines(run)
    faults = fault_table(timelines, frame)
    costs = cost_table(frame)
    closed = frame[frame["rate_spec"].fillna("") == ""] if "rate_spec" in frame else frame
    return Report(
        run_id=metadata["run_id"], metadata=metadata, frame=frame, probes=probes,
        configs=config_table(run, frame), costs=costs,
        verdicts=[with_store_rtt(v, frame) if v.row == "Performance" else
                  with_scaleout(v, frame, run) if v.row == "Scalability" else v
                  for v in article_table(closed, probes, faults)], cells=cell_rows(frame),
        warnings=sanity_warnings(costs) + method_warnings(frame) + generator_warnings(frame) + [
            f"the {extra} extra failed, so its section is missing: {why} (measure it with "
            f"`authbench bench-revocation --into {run}`)"
            for extra, why in metadata.get("extras_failed", {}).items()],
        caption=_caption(metadata, frame), timelines=timelines, faults=faults,
        equal_load=equal_load_table(frame),
    )
