"""Availability when the store fails: per-second timelines into figures per mode and fault.

Pure functions over analysis.data.load.load_timelines. Per cell:

- requests failed: 503 answers plus every other failure (401s for valid credentials
  are counted apart, as wrongly rejected); other_failed: those that were not a 503
  (a 500, a refused connection);
- the 503 share during the fault: of the requests that ended in the seconds whose middle
  lies inside the fault, the share answered 503 (failing closed, as it should);
- time to recover: from the moment the store (or node) answered again to the start of
  the first second from which every second to the end of the window served at least
  (1 - RECOVERED_ERRORS) of its requests with a p99 under LATENCY_FACTOR times the
  pre-fault p99 (resolution one second; NaN: not recovered within the window);
- wrongly accepted: replays of revoked credentials answered 200 (must be 0), out of
  every such replay the window measured (revoked_replays, from the run's histograms);
- wrongly rejected: 401s for credentials nobody revoked (their holders log in again).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.data.endpoints import ME
from analysis.report.formatting import number
from analysis.revocation.lag import strategy_label
from analysis.verdict.table import NOT_MEASURED, Verdict

RECOVERED_ERRORS = 0.01  # share of requests not served that still counts as recovered
LATENCY_FACTOR = 3.0  # p99 within this multiple of the pre-fault p99 counts as recovered
LATENCY_SLACK_MS = 5.0  # ... or within this many ms of it (tiny baselines are noisy)
NOT_SERVED = ("unavailable", "failed", "rejected")
FAULT_TEXT = {
    "redis-restart": "Redis stopped, restarted with its data",
    "redis-restart-empty": "Redis stopped, restarted empty",
    "redis-slow": "Redis unresponsive (DEBUG SLEEP)",
    "postgres-terminate": "PostgreSQL backends terminated",
    "node-kill": "one of two nodes killed, restarted",
}
REVOKED_REPLAY = f"{ME} (revoked replay)"  # loadtests/faults.py's replayer
SUMMARY_COLUMNS = ["cell", "key", "label", "fault", "fault_seconds", "requests", "failed",
                   "other_failed",
                   "unavailable_share", "recover_s", "wrongly_accepted", "revoked_replays",
                   "wrongly_rejected", "baseline_p99_ms", "peak_p99_ms", "fault_error"]


def label_of(row: pd.Series) -> str:
    """What the cell runs, in words (the revocation section's names)."""
    return strategy_label({"mode": row["mode"], "store": row["store"],
                           "revocation": row["revocation"], "nodes": row["nodes"]})


def not_served_share(seconds: pd.DataFrame) -> pd.Series:
    """Per second: the share of requests that were not served (503, 401, other failures)."""
    requests = seconds["requests"].where(seconds["requests"] > 0)
    return seconds[list(NOT_SERVED)].sum(axis=1) / requests


def baseline_p99(seconds: pd.DataFrame, started_s: float) -> float:
    """The median per-second p99 over the whole seconds before the fault started."""
    before = seconds[seconds["second"] + 1 <= started_s]["p99_ms"].dropna()
    return float(before.median()) if len(before) else math.nan


def recovery_seconds(seconds: pd.DataFrame, ended_s: float, baseline_ms: float) -> float:
    """Seconds from the fault's end until the service stayed healthy to the window's end."""
    if math.isnan(ended_s):
        return math.nan
    # A second in which no request ended (everything stuck) is missing: not healthy.
    ordered = seconds.set_index("second").reindex(
        range(int(seconds["second"].min()), int(seconds["second"].max()) + 1))
    ordered = ordered.rename_axis("second").reset_index()
    ordered["requests"] = ordered["requests"].fillna(0)
    limit = max(LATENCY_FACTOR * baseline_ms, baseline_ms + LATENCY_SLACK_MS) \
        if not math.isnan(baseline_ms) else math.inf
    healthy = ((not_served_share(ordered).fillna(1.0) <= RECOVERED_ERRORS)
               & (ordered["p99_ms"].fillna(math.inf) <= limit)).to_numpy()
    numbers = ordered["second"].to_numpy()
    after = numbers >= math.floor(ended_s)
    if not after.any():
        return math.nan
    # The first second from which every later second is healthy.
    first = None
    for index in range(len(numbers) - 1, -1, -1):
        if not after[index] or not healthy[index]:
            break
        first = numbers[index]
    if first is None:
        return math.nan
    return max(0.0, float(first) - ended_s)


def revoked_replays(frame: pd.DataFrame | None) -> dict[str, int]:
    """Per cell, the replays of revoked credentials measured (answered or failed), from
    the tidy frame of analysis.data.load.load_run."""
    if frame is None or frame.empty or "endpoint" not in frame:
        return {}
    rows = frame[frame["endpoint"] == REVOKED_REPLAY]
    return {str(r["cell"]): int(r["requests"]) + int(r["failures"]) for _, r in rows.iterrows()}


def fault_table(timelines: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell with a fault (SUMMARY_COLUMNS); frame (load_run) adds the number of
    revoked credentials replayed."""
    replays = revoked_replays(frame)
    rows = []
    faulted = timelines[timelines["fault"] != "none"] if not timelines.empty else timelines
    for cell, seconds in faulted.groupby("cell", sort=True):
        first = seconds.iloc[0]
        started, ended = float(first["fault_started_s"]), float(first["fault_ended_s"])
        middle = seconds["second"] + 0.5
        during = seconds[(middle >= started) & (middle <= ended)]
        in_fault = int(during["requests"].sum())
        baseline = baseline_p99(seconds, started)
        rows.append({
            "cell": cell, "key": first["key"], "label": label_of(first), "fault": first["fault"],
            "fault_seconds": ended - started,
            "requests": int(seconds["requests"].sum()),
            "failed": int(seconds["unavailable"].sum() + seconds["failed"].sum()),
            "other_failed": int(seconds["failed"].sum()),
            "unavailable_share": during["unavailable"].sum() / in_fault if in_fault else math.nan,
            "recover_s": recovery_seconds(seconds, ended, baseline),
            "wrongly_accepted": int(seconds["wrongly_accepted"].sum()),
            "revoked_replays": replays.get(str(cell), 0),
            "wrongly_rejected": int(seconds["rejected"].sum()),
            "baseline_p99_ms": baseline,
            "peak_p99_ms": float(seconds[seconds["second"] + 1 > started]["p99_ms"].max()),
            "fault_error": first["fault_error"],
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def fault_lines(table: pd.DataFrame) -> list[str]:
    """The section's Markdown: one table row per mode and fault."""
    if table.empty:
        return []
    lines = ["Under steady load, each fault starts 5 s into the measured window and lasts "
             "about 5 s; the revocation probes and a replayer of revoked credentials keep "
             "running. Time to recover counts from the store (or node) answering again to "
             "the first second from which requests were served as before (errors under "
             f"{100 * RECOVERED_ERRORS:g}%, p99 under {LATENCY_FACTOR:g}x the pre-fault p99), "
             "to one second.", "",
             "| fault | mode | requests | failed | 503 share during the fault | time to recover "
             "| wrongly accepted (of revoked replays) | wrongly rejected (401) "
             "| p99 before / peak |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, row in table.sort_values(["fault", "label"]).iterrows():
        recover = "not within the window" if math.isnan(row["recover_s"]) \
            else f"{row['recover_s']:.1f} s"
        if row["fault_error"]:
            recover += f" (fault failed: {row['fault_error']})"
        lines.append(
            f"| {FAULT_TEXT.get(row['fault'], row['fault'])} | {row['label']} | "
            f"{row['requests']:,} | {row['failed']:,}"
            + (f" ({row['other_failed']:,} not 503)" if row["other_failed"] else "") + " | "
            f"{number(100 * row['unavailable_share'], 0)}% | {recover} | "
            f"{row['wrongly_accepted']} (of {row['revoked_replays']:,}) | "
            f"{row['wrongly_rejected']:,} | "
            f"{number(row['baseline_p99_ms'], 1)} / {number(row['peak_p99_ms'], 0)} ms |")
    accepted = int(table["wrongly_accepted"].sum())
    lines += ["", f"Revoked credentials accepted again: {accepted} "
              + ("(every mode failed closed)." if accepted == 0 else
                 "— a revoked credential worked again after a fault of its store."), ""]
    return lines


def plot_fault_timelines(timelines: pd.DataFrame, caption: str) -> Figure:
    """Per fault: requests not served and p99 per second, per mode, the fault shaded."""
    faulted = timelines[timelines["fault"] != "none"]
    faults = sorted(faulted["fault"].unique())
    figure, axes = plt.subplots(len(faults), 2, figsize=(13, 2.8 * len(faults) + 0.8),
                                squeeze=False)
    for row, fault in enumerate(faults):
        cells = faulted[faulted["fault"] == fault]
        share_axes, p99_axes = axes[row]
        for _cell, seconds in cells.groupby("cell", sort=True):
            seconds = seconds.sort_values("second")
            label = label_of(seconds.iloc[0])
            x = seconds["second"].to_numpy() + 0.5
            share_axes.plot(x, 100 * not_served_share(seconds).fillna(0), marker=".",
                            label=label)
            p99_axes.plot(x, seconds["p99_ms"], marker=".", label=label)
        started = float(np.nanmean(cells["fault_started_s"]))
        ended = float(np.nanmean(cells["fault_ended_s"]))
        for ax in (share_axes, p99_axes):
            if not math.isnan(started) and not math.isnan(ended):
                ax.axvspan(started, ended, color="tab:red", alpha=0.12)
            ax.set_xlabel("seconds into the measured window")
            ax.grid(alpha=0.3)
        share_axes.set_ylabel("not served (%)")
        share_axes.set_ylim(-3, 103)
        share_axes.set_title(f"{FAULT_TEXT.get(fault, fault)}: 503s, 401s and errors",
                             fontsize=9)
        p99_axes.set_yscale("log")
        p99_axes.set_ylabel("p99 (ms)")
        p99_axes.set_title(f"{FAULT_TEXT.get(fault, fault)}: p99 per second", fontsize=9)
        p99_axes.legend(fontsize=7, loc="upper right")
    figure.suptitle("Availability when the store fails (fault shaded)")
    figure.text(0.01, 0.005, caption[:200], fontsize=7, color="#555")
    figure.tight_layout(rect=(0, 0.03, 1, 0.97))
    return figure


def _span(low: float, high: float, form: str) -> str:
    """'2.0 to 5.0', or '2.0' when both ends agree."""
    return form.format(low) if low == high else f"{form.format(low)} to {form.format(high)}"


def _outage(group: pd.DataFrame) -> str:
    """'19,490 of 33,168 requests failed, recovered 2.0 s after the store was back' (the
    slowest recovery over the group's faults)."""
    recover = group["recover_s"].max()
    return (f"{int(group['failed'].sum()):,} of {int(group['requests'].sum()):,} requests "
            f"failed over {len(group)} fault(s), "
            + ("not recovered within the window" if math.isnan(recover) else
               f"recovered {recover:.1f} s after the store was back"))


def availability(faults: pd.DataFrame | None) -> Verdict:
    """Sessions need their store on every request; stateless JWT does not. Decided from the
    faults suite's cells (fault_table): requests failed, time to recover, and revoked
    credentials accepted again (which must be 0)."""
    claim = ("Sessions depend on their store for every request; a JWT is verified without "
             "one, so it keeps working when the store fails.")
    if faults is None or faults.empty:
        return Verdict("Availability when the store fails", claim, "no cell with a fault",
                       NOT_MEASURED)
    store = faults[faults["fault"] != "node-kill"]
    parts = []
    for label, group in store.groupby("label", sort=True):
        parts.append(f"{label}: {_outage(group)}")
    accepted = int(faults["wrongly_accepted"].sum())
    replays = int(faults["revoked_replays"].sum())
    parts.append(f"revoked credentials accepted again: {accepted} of {replays:,} replays")
    measured = "; ".join(parts)
    if accepted:
        return Verdict("Availability when the store fails", claim, measured,
                       "does not hold safely: a store fault made a revoked credential valid")
    stateless = store[store["label"].str.startswith("JWT, no blocklist")]
    stateful = store[~store["label"].str.startswith("JWT, no blocklist")]
    if stateless.empty or stateful.empty:
        return Verdict("Availability when the store fails", claim, measured,
                       "depends: needs JWT without revocation and a store-backed mode")
    jwt_failed = int(stateless["failed"].sum())
    stateful_failed = int(stateful["failed"].sum())
    if jwt_failed <= 0.01 * max(1, stateful_failed):
        stuck = sorted(set(stateful.loc[stateful["recover_s"].isna(), "label"]))
        recovered = ("and recovered by itself" if not stuck else
                     f"and recovered by itself except {', '.join(stuck)} (not within the window)")
        failed = stateful.groupby("label")["failed"].sum()
        recover = stateful["recover_s"].dropna()
        back = "" if recover.empty else (
            f", back {_span(recover.min(), recover.max(), '{:.1f}')} s after the store")
        recovered += f" ({_span(failed.min(), failed.max(), '{:,.0f}')} requests failed{back})"
        other = stateful[stateful["other_failed"] > 0]
        not_503 = "" if other.empty else (
            f"; but {int(other['other_failed'].sum()):,} requests failed otherwise than with "
            f"503 (e.g. a 500) in {', '.join(sorted(set(other['label'])))}")
        return Verdict("Availability when the store fails", claim, measured,
                       f"holds: JWT without revocation kept serving ({jwt_failed:,} of "
                       f"{int(stateless['requests'].sum()):,} requests failed); the modes that "
                       f"ask the store failed closed (503) while it was down {recovered}; no "
                       f"revoked credential came back (0 of {replays:,} replays){not_503}")
    return Verdict("Availability when the store fails", claim, measured,
                   "does not hold: JWT without revocation failed too")
