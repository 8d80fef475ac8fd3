"""The store across a network: latency and cost against the store's round trip.

Cells with the suite key `store_rtt_ms` ran with a delay line between their targets and
their Redis or PostgreSQL store. Under a fixed arrival rate (open model) each window's
p50 and p99 count from the intended send, so a round trip shows in them in full; a
closed loop at saturation would hide it (more requests wait, throughput stays). The
configurations of one family differ only in the round trip; a family's latency against
it is fitted by least squares (slope: ms of latency per ms of round trip, about the
store calls a request waits for in turn). A configuration that never waits for its
store (JWT without revocation, the pub/sub blocklist) is the flat control.

Each figure is the median over repeats with the range over them (analysis.cost.table.Interval).
Cost is CPU per request, target plus store; the delay line's own CPU is apart. It is the
answer's figure (analysis.cost.table.cost_table, closed-loop windows) where the run measured
the configuration in a closed loop, else the fixed-rate windows' own, and the table
says which.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import itertools

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.cost.table import CLOSED_LOOP, Interval, cost_table, interval
from analysis.data.endpoints import ME
from analysis.report.formatting import number
from analysis.report.plots import finish
from analysis.verdict.table import NOT_MEASURED, Verdict

RTT_PART = re.compile(r"-rtt[0-9.]+ms")
Section = tuple[list[str], list[tuple[str, str, Figure]]]


def family_of(config: str) -> str:
    """A configuration's name without its round trip: what its RTT sweep shares."""
    return RTT_PART.sub("", config)


def label_of(row: pd.Series) -> str:
    """A reader's name for a configuration: 'session (redis)', 'JWT HS256 + blocklist'."""
    mode, store, revocation = str(row["mode"]), str(row["store"]), str(row["revocation"])
    if mode == "none":
        return "no auth (floor)"
    if mode == "session":
        return f"session ({store})"
    name = f"{'JWT' if mode == 'jwt' else 'hybrid'} {row['alg']}"
    if revocation == "blocklist":
        return f"{name} + blocklist ({store})"
    if revocation == "pubsub":
        return f"{name} + pub/sub blocklist"
    return f"{name} (no revocation)" if mode == "jwt" else f"{name} (no blocklist)"


def rtt_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The hot endpoint's windows at a fixed rate, with family and label; empty unless some
    cell ran with its store at a distance."""
    needed = {"store_rtt_ms", "rate_offered", "endpoint"}
    if frame.empty or not needed <= set(frame) or not (frame["store_rtt_ms"] > 0).any():
        return pd.DataFrame()
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)
                & frame["rate_offered"].notna() & ~frame["is_generator_short"]]
    if hot.empty:
        return pd.DataFrame()
    families = [f"{family_of(str(c))} at {s}" for c, s in zip(hot["config"], hot["rate_spec"],
                                                               strict=True)]
    return hot.assign(family=families, label=[label_of(r) for _, r in hot.iterrows()])


FIXED_RATE = "fixed rate"  # cost_from when no closed-loop window measured the configuration


def rtt_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per family and round trip: p50, p99, cost, delay-line CPU and store calls
    per request, each an Interval over repeats; cost_from: the windows the cost came from
    (CLOSED_LOOP: the answer's cost_table, else FIXED_RATE: these windows)."""
    rows = rtt_rows(frame)
    if rows.empty:
        return pd.DataFrame()
    is_closed = frame["rate_spec"].fillna("") == "" if "rate_spec" in frame else \
        frame["rate_offered"].isna()
    closed = cost_table(frame) if is_closed.any() else pd.DataFrame()
    answer = {str(r["key"]): interval(r, "server_cpu_us") for _, r in closed.iterrows()}
    out = []
    for (family, rtt), group in rows.groupby(["family", "store_rtt_ms"], sort=True):
        first = group.iloc[0]
        cost = answer.get(str(first["config"]))
        out.append({
            "family": family, "label": first["label"], "mode": first["mode"],
            "revocation": first["revocation"], "store": first["store"], "rtt_ms": float(rtt),
            "rate_offered": float(group["rate_offered"].median()), "repeats": len(group),
            **{name: Interval.of(group[column]) for name, column in (
                ("p50", "p50_ms"), ("p99", "p99_ms"), ("cost", "server_cpu_us"),
                ("proxy", "proxy_cpu_us"), ("calls", "store_ops_per_request"))},
            **({"cost": cost, "cost_from": CLOSED_LOOP} if cost is not None
               else {"cost_from": FIXED_RATE}),
        })
    return pd.DataFrame(out)


def _cost_heading(table: pd.DataFrame) -> str:
    """The cost column's heading: which windows its figures come from."""
    sources = set(table["cost_from"])
    if sources == {CLOSED_LOOP}:
        return "CPU µs/request (closed loop, as in the answer)"
    if sources == {FIXED_RATE}:
        return "CPU µs/request (these fixed-rate windows)"
    return "CPU µs/request (closed loop; * these fixed-rate windows)"


@dataclass(frozen=True)
class RttEffect:
    """A family's latency against the round trip: p50 = intercept + slope x RTT."""

    family: str
    label: str
    slope: float  # ms of p50 per ms of round trip (per store call waited for: ~1)
    intercept_ms: float
    added_ms: dict[float, Interval]  # round trip -> p50 there minus p50 at the smallest
    calls: float  # store calls per request (median over windows)
    rtts: tuple[float, ...]

    @property
    def is_flat(self) -> bool:
        """The round trip moved its latency by under a tenth of itself: a control."""
        return abs(self.slope) < 0.1


def rtt_effects(table: pd.DataFrame) -> list[RttEffect]:
    """Each family with two or more round trips: its slope and the latency each step added."""
    effects = []
    for family, group in table.groupby("family", sort=False):
        group = group.sort_values("rtt_ms")
        if group["rtt_ms"].nunique() < 2:
            continue
        x = group["rtt_ms"].to_numpy(float)
        y = np.array([p.median for p in group["p50"]])
        slope, intercept = (float(v) for v in np.polyfit(x, y, 1))
        base = group.iloc[0]["p50"]
        added = {float(r["rtt_ms"]): Interval(r["p50"].median - base.median,
                                              r["p50"].low - base.high, r["p50"].high - base.low,
                                              min(r["p50"].n, base.n))
                 for _, r in group.iloc[1:].iterrows()}
        calls = float(np.nanmedian([c.median for c in group["calls"]])) \
            if any(c.n for c in group["calls"]) else math.nan
        effects.append(RttEffect(str(family), str(group.iloc[0]["label"]), slope, intercept,
                                 added, calls, tuple(float(v) for v in x)))
    return effects


def break_even_rtt(points: list[tuple[float, float]], control_p50_ms: float) -> float | None:
    """The round trip from which a family's p50 stays above the control's: where the line
    through its measured (RTT, p50) medians crosses it (the smallest RTT when it is above
    there already; None: never within the RTTs measured)."""
    ordered = sorted(points)
    if not ordered:
        return None
    if ordered[0][1] > control_p50_ms:
        return ordered[0][0]
    crossing = None
    for (x0, y0), (x1, y1) in itertools.pairwise(ordered):
        if y0 <= control_p50_ms < y1:
            crossing = x0 + (x1 - x0) * (control_p50_ms - y0) / (y1 - y0)
        elif y1 <= control_p50_ms:
            crossing = None  # back under it: not from here on
    return crossing


def _separated_from(group: pd.DataFrame, control: Interval) -> float | None:
    """The first measured RTT from which the family's p50 range stays above the control's."""
    above = [(float(r["rtt_ms"]), r["p50"].low > control.high)
             for _, r in group.sort_values("rtt_ms").iterrows()]
    return next((rtt for i, (rtt, _) in enumerate(above) if all(a for _, a in above[i:])), None)


def _control(table: pd.DataFrame) -> tuple[str, Interval] | None:
    """The JWT control (no store read on the hot path): its p50 over all round trips."""
    control = table[(table["mode"] == "jwt") & (table["revocation"] == "none")]
    if control.empty:
        return None
    medians = [p.median for p in control["p50"]]
    return (str(control.iloc[0]["label"]).removesuffix(" (no revocation)"),
            Interval.of(medians))


def _signed(value: Interval) -> str:
    """'+0.50 (0.46 to 0.54)', '-0.03 (-0.19 to 0.12)'."""
    text = value.text(2)
    return text if text.startswith("-") else f"+{text}"


def rtt_sentences(table: pd.DataFrame, is_brief: bool = False) -> list[str]:
    """What the round trip did, in words with the figures (brief: the largest round trip
    and the slope only, for the article's table)."""
    if table.empty:
        return []
    effects = rtt_effects(table)
    said = []
    for effect in effects:
        shown = list(effect.added_ms.items())[-1:] if is_brief else effect.added_ms.items()
        steps = ", ".join(f"{_signed(a)} ms at {r:g} ms" for r, a in shown)
        calls = f"; {number(effect.calls, 2)} store calls per request" \
            if not math.isnan(effect.calls) and not is_brief else ""
        said.append(f"{effect.label}: p50 {steps} (slope {effect.slope:.2f} ms per ms of "
                    f"round trip{calls})")
    control = _control(table)
    for effect in effects:
        if control is None or not effect.label.startswith("session"):
            continue
        name, p50 = control
        group = table[table["family"] == effect.family]
        at = break_even_rtt([(float(r["rtt_ms"]), r["p50"].median)
                             for _, r in group.iterrows()], p50.median)
        where = ("never within the round trips measured" if at is None else
                 f"already at {at:g} ms" if at == min(effect.rtts) else
                 f"from about {at:.2f} ms (interpolated)")
        apart = _separated_from(group, p50)
        ranges = "" if apart is None else f"; their ranges part from {apart:g} ms"
        said.append(f"a {effect.label} lookup costs more latency than verifying a {name} "
                    f"({p50.text(2)} ms p50) {where}{ranges}")
    return said


def plot_store_rtt(table: pd.DataFrame, caption: str) -> Figure:
    """p50, p99 and CPU per request against the store's round trip, a line per family."""
    figure = Figure(figsize=(14, 4.6))
    axes = figure.subplots(1, 3)
    floor = table[table["mode"] == "none"]
    table = table[table["mode"] != "none"]
    for _, group in table.groupby("family", sort=False):
        group = group.sort_values("rtt_ms")
        x = group["rtt_ms"].to_numpy(float)
        label = str(group.iloc[0]["label"])
        for ax, column in zip(axes, ("p50", "p99", "cost"), strict=True):
            values = list(group[column])
            mid = np.array([v.median for v in values])
            err = np.array([[v.median - v.low for v in values],
                            [v.high - v.median for v in values]])
            ax.errorbar(x, mid, yerr=np.nan_to_num(err), marker="o", capsize=3,
                        label=label if column == "cost" else None)
    for ax, column in zip(axes, ("p50", "p99", "cost"), strict=True):
        for _, row in floor.iterrows():  # no store at all: a level, not a line over RTT
            ax.axhline(row[column].median, color="#777777", linestyle="--", linewidth=1,
                       label="no auth (floor)" if column == "cost" else None)
    sources = " or ".join(sorted(set(table["cost_from"]))) if "cost_from" in table else ""
    for ax, title, unit in zip(axes, ("p50 latency", "p99 latency", "server CPU per request"),
                               ("ms", "ms", f"µs (target + store; {sources})"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("store round trip added (ms)")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    rate = number(float(table["rate_offered"].median()), 0)
    axes[2].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    return finish(figure, f"The store across a network: every configuration offered {rate} "
                          "req/s (open model); median and range over repeats", caption)


def store_rtt_section(frame: pd.DataFrame, caption: str) -> Section:
    """The report's section: the table, what each round trip added, and the chart."""
    table = rtt_table(frame)
    if table.empty:
        return [], []
    lines = ["## The store across a network", "",
             "Each configuration was offered the same requests per second on a fixed "
             "schedule, with a delay line adding the round trip between its targets and "
             "its store; latency counts from each request's intended send. Median (range) "
             "over repeats. Cost is CPU per request, target + store; the delay line's own "
             "CPU is apart and counted in neither. Store calls per request are Redis's own "
             "count over the window, server-wide: the other configurations' idle checks of "
             "their revocation marker add a few hundredths.", "",
             "| configuration | store RTT ms | req/s offered | p50 ms (fixed rate) "
             f"| p99 ms (fixed rate) | {_cost_heading(table)} | delay line µs/request "
             "| store calls/request |",
             "|---|---|---|---|---|---|---|---|"]
    is_mixed = table["cost_from"].nunique() > 1
    for _, r in table.iterrows():
        mark = "*" if is_mixed and r["cost_from"] == FIXED_RATE else ""
        lines.append(f"| {r['label']} | {r['rtt_ms']:g} | {number(r['rate_offered'], 0)} | "
                     f"{r['p50'].text(2)} | {r['p99'].text(2)} | {r['cost'].text(1)}{mark} | "
                     f"{r['proxy'].text(1)} | {r['calls'].text(2)} |")
    lines += ["", *(f"- {sentence}" for sentence in rtt_sentences(table)), ""]
    return lines, [("store-rtt", "The store across a network", plot_store_rtt(table, caption))]


def with_store_rtt(verdict: Verdict, frame: pd.DataFrame) -> Verdict:
    """The Performance row, with what the store's round trip added where the run varied it."""
    table = rtt_table(frame)
    said = rtt_sentences(table, is_brief=True)
    if not said:
        return verdict
    measured = ("Store round trip, at equal offered load (the largest measured; each step in "
                "'The store across a network'): " + "; ".join(said) + ".")
    if verdict.verdict == NOT_MEASURED:
        flat = [e.label for e in rtt_effects(table) if e.is_flat]
        return Verdict(verdict.row, verdict.claim, measured,
                       "depends on the store's distance: every store call a request waits "
                       "for adds its round trip to the latency"
                       + (f"; {', '.join(flat)} stayed flat" if flat else ""))
    return Verdict(verdict.row, verdict.claim, f"{verdict.measured} {measured}", verdict.verdict)
