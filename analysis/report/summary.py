"""A run's summary table: one row per cell, for its hot endpoint."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.cost.table import cost_table, interval, order_lines, ordered, sanity_warnings
from analysis.data.endpoints import HOT_PATHS, LOGIN
from analysis.data.load import load_metadata, load_run
from analysis.latency.equal_load import equal_load_of, equal_load_table, is_one_rate
from analysis.report.formatting import number

# A login scenario's cell is about its logins.
CELL_ENDPOINTS = (*HOT_PATHS, LOGIN)


def summarize_run(run: Path) -> list[dict[str, Any]]:
    """Every finished cell of a run, in the order they ran, at its hot endpoint."""
    return cell_rows(load_run(run))


def cell_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per cell of the tidy frame: its hot endpoint, or its failure. Its
    cpu_ms_per_request is the window's cost as the answer counts it, target + store CPU
    (the loader's column is the target's alone), so a window's figure and its
    configuration's median are the same quantity."""
    rows = []
    for cell, group in frame.groupby("cell", sort=True):
        pick = group
        for endpoint in CELL_ENDPOINTS:
            if (group["endpoint"] == endpoint).any():
                pick = group[group["endpoint"] == endpoint]
                break
        row = {"cell": cell, **pick.iloc[0].to_dict()}
        server = row.get("server_cpu_us")
        if isinstance(server, float) and not math.isnan(server):
            row["cpu_ms_per_request"] = server / 1000
        rows.append(row)
    return rows


def format_summary(rows: list[dict[str, Any]]) -> list[str]:
    """The table as text lines (renderers return lines; the CLI prints them)."""
    lines = [f"{'cell':<46}{'status':>7}{'req/s':>8}{'fail':>6}{'p50 ms':>8}{'p99 ms':>8}"
             f"{'p99.9':>8}{'max ms':>8}{'auth p50':>9}{'secs':>6}"]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['cell']:<46}{'FAILED':>7}  {str(r['reason'])[:80]}")
            continue
        lines.append(
            f"{r['cell']:<46}{'ok':>7}{number(r.get('rps'), 0):>8}"
            f"{number(r.get('failures'), 0):>6}{number(r.get('p50_ms'), 1):>8}"
            f"{number(r.get('p99_ms'), 1):>8}{number(r.get('p99_9_ms'), 1):>8}"
            f"{number(r.get('max_ms'), 1):>8}{number(r.get('auth_p50_ms'), 3):>9}"
            f"{number(r.get('measured_seconds'), 1):>6}"
        )
    return lines


def rate_basis(rate: str, offered: float, metadata: dict[str, Any] | None = None) -> str:
    """What a rate spec offered, in words: '40 % of the dearest configuration's capacity
    (jwt-..., 2,480 req/s on one core): 992 req/s offered'."""
    share = rate.split("%")[0]
    dearest = (metadata or {}).get("dearest") or {}
    if rate.endswith("%dearest"):
        which = (f" ({dearest['key']}, {dearest['rps']:,.0f} req/s on one core)"
                 if dearest.get("key") else "")
        return f"{share} % of the dearest configuration's capacity{which}: " \
            f"{offered:,.0f} req/s offered"
    if rate.endswith("%"):
        return f"{share} % of the floor's capacity: {offered:,.0f} req/s offered"
    return f"{offered:,.0f} req/s offered"


def format_answer(frame: pd.DataFrame, run: Path | None = None) -> list[str]:
    """The answer for the terminal: cost per request per configuration (closed-loop
    windows) in the answer's order; p90 at equal offered load with its interval where the
    run has it (open model; the windows' histograms merged when the run folder is given),
    else closed-loop p99."""
    table = cost_table(frame)
    equal = equal_load_of(run, frame) if run is not None else equal_load_table(frame)
    if table.empty:
        if not equal.empty:
            return ["no closed-loop window, so no cost per request: the run measured "
                    "open-model load only (its latency against offered load is in the report)"]
        return ["no configuration was measured"]
    at = {str(r["config"]): r for _, r in equal.iterrows()} if is_one_rate(equal) else {}
    rate = str(equal["rate_spec"].iloc[0]) if at else ""
    heading = "p90 ms (95% interval)" if at else "p99 ms"
    rows = []
    for _, row in ordered(table).iterrows():
        load = at.get(str(row["key"]))
        if load is not None and load["repeats"]:
            latency = (f"{number(load['p90_ms'], 2)} ({number(load['p90_ms_low'], 2)} to "
                       f"{number(load['p90_ms_high'], 2)})")
        else:
            latency = "-" if at else number(row["p99_ms"], 1)
        rows.append((row, latency))
    width = max(40, *(len(str(key)) + 1 for key in table["key"]))  # whole names: they differ
    late = max(len(heading), *(len(latency) for _, latency in rows)) + 2
    lines = [f"{'configuration':<{width}}{'cost µs/request (range)':>28}{'vs floor':>10}"
             f"{heading:>{late}}  limited by"]
    for row, latency in rows:
        lines.append(f"{row['key']!s:<{width}}{interval(row, 'server_cpu_us').text(1):>28}"
                     f"{number(row['floor_ratio'], 2):>10}{latency:>{late}}  "
                     f"{row['bottleneck']}")
    lines += order_lines(table, "cheapest to dearest")
    unclaimed = table[table["server_cpu_us"].isna()]
    if len(unclaimed):
        lines.append(f"no cost for {', '.join(map(str, unclaimed['key']))}: no process of "
                     "theirs was named to authbench (an API's adapter gives `pids`, or a "
                     "[service] command), so their CPU was not measured")
    lines.append("cost: CPU µs per request of target and store over the closed-loop windows"
                 + ("" if at else ", p99 from the same windows"))
    if at:
        offered = float(equal["rate_offered"].median())
        metadata = load_metadata(run) if run is not None else None
        kept = equal[equal["repeats"] > 0]
        basis = sorted({str(b) for b in kept.get("latency_basis", []) if isinstance(b, str)})
        lines.append(f"p90 at {rate}: {rate_basis(rate, offered, metadata)} to every "
                     "configuration on a fixed schedule (open model), latency from each "
                     "request's intended send"
                     + (f"; percentiles {basis[0]}" if len(basis) == 1 else ""))
    lines += [f"WARNING: {w}" for w in sanity_warnings(table)]
    return lines
