"""Revocation in the report: blocklist storage, its steady state, and logout-all costs.

Reads revocation.json (written by `authbench bench-revocation`); pure tables,
charts that return Figures, and the report section as lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from analysis.data.formats import REVOCATION_STORAGE, load_json
from analysis.report.formatting import number
from analysis.report.plots import finish

RESULT_FILE = "revocation.json"
# What a token lives by default in the targets (ACCESS_TTL): the model's extrapolation.
DEFAULT_ACCESS_TTL = 900
GROWTH_COLUMNS = ["store", "entries", "bytes", "bytes_per_entry", "insert_seconds",
                  "check_present_us", "check_absent_us", "bytes_method"]
LOGOUT_COLUMNS = ["store", "op", "k", "median_ms", "stdev_ms", "reps", "removed"]
STORE_COLORS = {"memory": "tab:blue", "redis": "tab:red", "postgres": "tab:green"}


def load_revocation(path: Path) -> dict[str, Any]:
    """revocation.json as a dict; refuses a format it does not know."""
    return load_json(path, REVOCATION_STORAGE)


def growth_table(data: dict[str, Any]) -> pd.DataFrame:
    """One row per store and checkpoint: entries, bytes, bytes/entry, insert and check cost."""
    return pd.DataFrame(data.get("growth", []), columns=GROWTH_COLUMNS)  # stores as run


def logout_all_table(data: dict[str, Any]) -> pd.DataFrame:
    """One row per store, operation and k (k is missing for the constant-cost cutoff)."""
    frame = pd.DataFrame(data.get("logout_all", []), columns=LOGOUT_COLUMNS)
    return frame.astype({"k": "Int64", "removed": "Int64"})


def _log_log(axes: Axes, xlabel: str, ylabel: str) -> None:
    axes.set_xscale("log")
    axes.set_yscale("log")
    # Plain numbers on x (1,000 not 10^3): entries and k are counts people read as such.
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)


def plot_storage_growth(data: dict[str, Any], caption: str) -> Figure:
    """Bytes against blocklist entries (log-log), a line per store, the plateau marked."""
    growth = growth_table(data)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for store, group in growth.groupby("store", sort=False):
        axes.plot(group["entries"], group["bytes"], marker="o", label=str(store),
                  color=STORE_COLORS.get(str(store)))
    for steady in data.get("steady_state", []):
        if steady.get("plateau_entries") and steady.get("plateau_bytes"):
            axes.scatter([steady["plateau_entries"]], [steady["plateau_bytes"]], marker="*",
                         s=180, color="black", zorder=3,
                         label=f"steady state ({steady['store']}, "
                               f"{number(steady['rate_per_s'], 0)}/s, T = {steady['ttl_s']:g} s): "
                               "measured entries x bytes/entry")
    _log_log(axes, "blocklist entries", "bytes")
    return finish(figure, "What the JWT blocklist takes in each store", caption)


def plot_logout_all(data: dict[str, Any], caption: str) -> Figure:
    """Log out everywhere: ms against sessions per user; the JWT cutoff as a reference."""
    table = logout_all_table(data)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    deletes = table[table["op"] == "delete_user_sessions"]
    for store, group in deletes.groupby("store", sort=False):
        line, = axes.plot(group["k"].astype(float), group["median_ms"], marker="o",
                          label=f"{store}: delete the user's sessions",
                          color=STORE_COLORS.get(str(store)))
        cutoff = table[(table["op"] == "set_user_cutoff") & (table["store"] == store)]
        if not cutoff.empty:
            axes.axhline(float(cutoff["median_ms"].iloc[0]), linestyle="--", linewidth=1,
                         color=line.get_color(), label=f"{store}: JWT per-user cutoff")
    _log_log(axes, "sessions of the user (k)", "median ms")
    return finish(figure, "Log out all devices: sessions against a JWT cutoff", caption)


def _growth_lines(growth: pd.DataFrame) -> list[str]:
    lines = ["| store | entries | MB | bytes/entry | insert s | check present µs "
             "| check absent µs |", "|---|---|---|---|---|---|---|"]
    for _, row in growth.iterrows():
        lines.append(f"| {row['store']} | {number(row['entries'], 0)} | "
                     f"{number(row['bytes'] / 1e6, 2)} | {number(row['bytes_per_entry'], 0)} | "
                     f"{number(row['insert_seconds'], 2)} | {number(row['check_present_us'])} | "
                     f"{number(row['check_absent_us'])} |")
    lines.append("")
    for store, method in growth.groupby("store", sort=False)["bytes_method"].first().items():
        lines.append(f"- bytes in {store}: {method}")
    return [*lines, ""]


def steady_state_lines(data: dict[str, Any]) -> list[str]:
    """The model with the measured figures, one paragraph per steady-state run."""
    lines = []
    for s in data.get("steady_state", []):
        rate, ttl, per_entry = s["rate_per_s"], s["ttl_s"], s.get("bytes_per_entry")
        plateau = s.get("plateau_entries")
        measured = (f"measured plateau {number(plateau, 0)} entries" if plateau is not None
                    else "no plateau measured (the run was shorter than T)")
        size = (f" = {number(s['plateau_bytes'] / 1e6, 2)} MB in {s['store']} "
                f"(at {number(per_entry, 0)} B/entry from the growth run)"
                if s.get("plateau_bytes") else "")
        lines.append(
            f"At R = {number(rate, 0)} logouts/s and T = {ttl:g} s tokens the blocklist holds "
            f"~R*T/2 = {number(s['model_entries'], 0)} entries (Little's law: each entry lives "
            f"until its token's exp, on average T/2 after the logout); {measured}{size}, "
            f"sampled every 0.5 s over {s['seconds']:g} s "
            f"({number(s.get('rate_achieved_per_s'), 0)} logouts/s achieved).")
        if per_entry:
            long_lived = rate * DEFAULT_ACCESS_TTL / 2
            lines.append(
                f"By the same model, with the targets' default {DEFAULT_ACCESS_TTL} s access "
                f"tokens, {number(rate, 0)} logouts/s keep ~{number(long_lived, 0)} entries "
                f"= {number(long_lived * per_entry / 1e6, 1)} MB (model, not measured).")
        lines.append("")
    return lines


def _logout_lines(table: pd.DataFrame) -> list[str]:
    lines = ["| store | operation | k | median ms | ± stdev | reps | removed |",
             "|---|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        k = "-" if pd.isna(row["k"]) else number(int(row["k"]), 0)
        removed = "-" if pd.isna(row["removed"]) else number(int(row["removed"]), 0)
        lines.append(f"| {row['store']} | {row['op']} | {k} | {number(row['median_ms'], 3)} | "
                     f"{number(row['stdev_ms'], 3)} | {row['reps']} | {removed} |")
    return [*lines, ""]


def revocation_storage_lines(data: dict[str, Any]) -> list[str]:
    """The revocation section of report.md."""
    lines = ["## Revocation: what the blocklist stores and what logout-all costs", ""]
    growth = growth_table(data)
    if not growth.empty:
        lines += ["### Blocklist storage", "",
                  "Entries as the store counts them, the bytes they take, and the median cost "
                  "of one revocation check for a jti in the list and one not in it.", ""]
        lines += _growth_lines(growth)
    if data.get("steady_state"):
        lines += ["### Blocklist steady state", "", *steady_state_lines(data)]
    table = logout_all_table(data)
    if not table.empty:
        lines += ["### Log out all devices", "",
                  "Sessions: delete the user's k sessions. JWT: one per-user cutoff write, "
                  "whatever k is.", ""]
        lines += _logout_lines(table)
    if data.get("notes"):
        lines += [f"- {note}" for note in data["notes"]] + [""]
    return lines


def revocation_storage_section(run: Path, caption: str
                               ) -> tuple[list[str], list[tuple[str, str, Figure]]]:
    """Lines and charts of the revocation benchmark, when the run folder holds its JSON."""
    path = run / RESULT_FILE
    if not path.exists():
        return [], []
    data = load_revocation(path)
    figures = []
    if data.get("growth"):
        figures.append(("revocation-storage", "Blocklist storage against entries",
                        plot_storage_growth(data, caption)))
    if data.get("logout_all"):
        figures.append(("logout-all", "Log out all devices: sessions against a JWT cutoff",
                        plot_logout_all(data, caption)))
    return revocation_storage_lines(data), figures
