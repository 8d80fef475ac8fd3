"""Latency against offered load: each mode's curve, its knee, and its rate under a p99.

Open-model cells (a `rate`) of the same configuration at several rates make one curve.
The knee is the first offered rate from which the curve stays bent (a spike that the
next rate takes back is noise): its p99 exceeds KNEE_MULTIPLE times the low-load p99
(the lower of the two lowest rates' p99, so that one hiccup in a short window does not
move the baseline), or it completes less than (1 - SHORTFALL) of the offered rate.
Cells whose generator did not deliver the offered rate (the
`is_generator_short` column) say nothing of the target and are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from matplotlib.figure import Figure

KNEE_MULTIPLE = 5.0
SHORTFALL = 0.05
MIN_RATES = 3  # a configuration needs this many rates to make a curve
BASELINE_RATES = 2  # low-load p99: the lower of the two lowest rates' (one hiccup aside)
# (offered req/s, p99 ms, achieved req/s) of one rate
Point = tuple[float, float, float]


def _bends(point: Point, baseline_p99: float) -> bool:
    offered, p99, achieved = point
    return p99 > KNEE_MULTIPLE * baseline_p99 or achieved < (1 - SHORTFALL) * offered


def knee(points: Iterable[Point]) -> float | None:
    """The first offered rate from which latency stays bent or throughput short (None:
    never). A bend that the next rate takes back is a spike of a noisy window, not a knee."""
    ordered = sorted(p for p in points if not math.isnan(p[1]))
    if not ordered:
        return None
    baseline = min(p[1] for p in ordered[:BASELINE_RATES])
    bends = [_bends(p, baseline) for p in ordered]
    return next((p[0] for i, p in enumerate(ordered) if all(bends[i:])), None)


def max_rate_under(points: Iterable[Point], p99_ms: float) -> float | None:
    """The highest offered rate up to which every rate kept p99 under p99_ms and kept up."""
    best = None
    for offered, p99, achieved in sorted(points):
        if math.isnan(p99) or p99 > p99_ms or achieved < (1 - SHORTFALL) * offered:
            break
        best = offered
    return best


def _open_rows(frame: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    if "rate_offered" not in frame:
        return pd.DataFrame()
    return frame[(frame["status"] == "ok") & (frame["endpoint"] == endpoint)
                 & frame["rate_offered"].notna()]


def generator_limits(frame: pd.DataFrame, endpoint: str) -> dict[str, float]:
    """Per configuration: the lowest offered rate whose every window the generator fell
    short of (the curve cannot go on from there on this machine)."""
    rows = _open_rows(frame, endpoint)
    if rows.empty or "is_generator_short" not in rows:
        return {}
    every = rows.assign(is_short=rows["is_generator_short"].astype(bool)).groupby(
        ["config", "rate_offered"], as_index=False)["is_short"].all()
    short = every[every["is_short"]]
    return {str(config): float(group["rate_offered"].min())
            for config, group in short.groupby("config")}


def curve_points(frame: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    """One row per configuration and offered rate: medians over repeats of the endpoint.

    Columns: config, mode, rate_offered, rate_achieved, p50_ms, p99_ms, repeats.
    """
    rows = _open_rows(frame, endpoint)
    if "is_generator_short" in rows:
        rows = rows[~rows["is_generator_short"].fillna(False).astype(bool)]
    if rows.empty:
        return pd.DataFrame()
    grouped = rows.groupby(["config", "mode", "rate_offered"], as_index=False).agg(
        rate_achieved=("rate_achieved", "median"), p50_ms=("p50_ms", "median"),
        p99_ms=("p99_ms", "median"), repeats=("repeat", "nunique"))
    return grouped.sort_values(["config", "rate_offered"]).reset_index(drop=True)


def knee_table(points: pd.DataFrame, p99_targets_ms: Sequence[float] = (10.0, 50.0)
               ) -> pd.DataFrame:
    """Per configuration: its knee, and the highest rate holding p99 under each target."""
    rows = []
    for (config, mode), curve in points.groupby(["config", "mode"], sort=False):
        triples = list(zip(curve["rate_offered"], curve["p99_ms"], curve["rate_achieved"],
                           strict=True))
        row: dict[str, object] = {"config": config, "mode": mode,
                                  "rates": len(triples), "knee_rps": knee(triples)}
        for target in p99_targets_ms:
            row[f"max_rps_p99_under_{target:g}ms"] = max_rate_under(triples, target)
        rows.append(row)
    return pd.DataFrame(rows)


def plot_latency_curve(points: pd.DataFrame, caption: str = "") -> Figure:
    """p50 (dashed) and p99 (solid) against offered load, log axis, knee marked per config."""
    figure = Figure(figsize=(8, 4.8))
    axes = figure.subplots()
    for (config, _mode), curve in points.groupby(["config", "mode"], sort=False):
        line = axes.plot(curve["rate_offered"], curve["p99_ms"], marker="o",
                         label=f"{config} p99")[0]
        axes.plot(curve["rate_offered"], curve["p50_ms"], linestyle="--", marker=".",
                  color=line.get_color(), label=f"{config} p50")
        at = knee(zip(curve["rate_offered"], curve["p99_ms"], curve["rate_achieved"],
                      strict=True))
        if at is not None:
            p99 = float(curve.loc[curve["rate_offered"] == at, "p99_ms"].iloc[0])
            axes.scatter([at], [p99], s=160, facecolors="none", edgecolors=line.get_color(),
                         linewidths=2, zorder=3)
    axes.set_yscale("log")
    axes.set_xlabel("offered load (requests/s)")
    axes.set_ylabel("latency from intended send (ms)")
    axes.set_title("Latency against offered load (circled: the knee)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncol=2)
    if caption:
        figure.text(0.01, 0.005, caption, fontsize=6, color="0.4")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return figure


def curve_lines(points: pd.DataFrame, p99_targets_ms: Sequence[float] = (10.0, 50.0),
                limits: dict[str, float] | None = None) -> list[str]:
    """The knee table as Markdown, for configurations measured at three rates or more;
    limits: generator_limits, named where no knee was seen below them."""
    table = knee_table(points, p99_targets_ms)
    table = table[table["rates"] >= MIN_RATES]
    if table.empty:
        return []
    under = [f"max req/s with p99 < {t:g} ms" for t in p99_targets_ms]
    lines = [f"Open-model load: requests arrive on a schedule whatever the answers take, and "
             f"latency counts from each request's intended send. The knee is the first rate "
             f"from which p99 stays above {KNEE_MULTIPLE:g} times its low-load p99 (the lower "
             f"of the two lowest rates'), or the achieved rate more than {SHORTFALL:.0%} short "
             "of the offered one. Medians over repeats; windows whose load generator fell "
             "short are left out.", "",
             "| configuration | rates | knee req/s | " + " | ".join(under) + " |",
             "|---|---|---|" + "---|" * len(under)]
    for _, row in table.iterrows():
        cells = [_rate(row[f"max_rps_p99_under_{t:g}ms"]) for t in p99_targets_ms]
        found = _rate(row["knee_rps"])
        limit = (limits or {}).get(str(row["config"]))
        if found == "-":
            found = "none seen" if limit is None else \
                f"none below {limit:,.0f} (the generator fell short from there)"
        lines.append(f"| {row['config']} | {row['rates']} | {found} | "
                     + " | ".join(cells) + " |")
    return [*lines, ""]


def _rate(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.0f}"


def curve_section(frame: pd.DataFrame, endpoint: str, caption: str
                  ) -> tuple[list[str], list[tuple[str, str, Figure]]]:
    """The report's section: the knee table and the chart (empty without curves)."""
    points = curve_points(frame, endpoint)
    if points.empty:
        return [], []
    lines = curve_lines(points, limits=generator_limits(frame, endpoint))
    if not lines:
        return [], []
    counts = points.groupby("config")["rate_offered"].nunique()
    drawn = points[points["config"].isin(counts[counts >= MIN_RATES].index)]
    return (["## Latency against offered load", "", *lines],
            [("latency-vs-offered-load", "Latency against offered load",
              plot_latency_curve(drawn, caption))])
