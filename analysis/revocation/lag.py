"""Revocation lag, from the probe watches of a run (analysis.data.load.load_probes).

loadtests/revocation.py writes probe-<host>-<pid>.json per Locust process: trials,
each a logout followed by replays of the old credential on every node. The loader
makes them one row per (trial, node, credential); here they become summaries per
strategy and a CDF of the time to reject. What the check costs per request is in
analysis.revocation.cost.

A node that never accepted the credential (a per-node memory store on another node)
says nothing about revocation and is left out. A watch that ended without a
rejection is censored: it is shown with what bounds it (the token's remaining
lifetime), never given a made-up lag.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.report.formatting import number

EXPIRY_MARGIN_S = 0.1  # a rejection this close to exp (or later) is the token expiring
LOGIN_NODE, OTHER_NODES = "node that logged out", "other nodes"  # where a watch ran


def strategy_label(cell: dict[str, Any]) -> str:
    """A readable name for how a cell revokes, e.g. 'JWT + blocklist in redis, 2 nodes'."""
    mode, store, kind = cell.get("mode"), cell.get("store"), cell.get("revocation", "none")
    if cell.get("api"):  # an API's variant: its name says what it does, not the twins' keys
        label = f"{cell['api']} ({mode})"
    elif mode == "session":
        label = f"session in {store}"
    elif mode in ("jwt", "hybrid"):
        name = "JWT" if mode == "jwt" else "hybrid"
        label = {
            "none": f"{name}, no blocklist",
            "blocklist": f"{name} + blocklist in {store}"
                         + (" (each node its own)" if store == "memory" else ""),
            "pubsub": f"{name} + blocklist in node memory via Redis pub/sub",
        }.get(str(kind), f"{name} + {kind}")
        if mode == "hybrid" and store is not None:
            label += f", refresh families in {store}"
    else:
        label = str(mode)
    if cell.get("logout") == "all":
        label += ", log out everywhere"
    if cell.get("access_ttl"):
        label += f", {cell['access_ttl']} s tokens"
    if int(cell.get("nodes") or 1) > 1:
        label += f", {cell['nodes']} nodes"
    return label


def credential_label(strategy: str, credential: str) -> str:
    """The strategy, naming the credential where the mode has two (hybrid) or it is a
    refresh token."""
    if credential == "refresh":
        return f"{strategy} · refresh token"
    if credential == "access" and strategy.startswith("hybrid"):
        return f"{strategy} · access token"
    return strategy


def series_label(strategy: str, credential: str, nodes: int, is_login_node: bool) -> str:
    """One line of the lag table: strategy, credential and, on several nodes, which node."""
    label = credential_label(strategy, credential)
    if nodes > 1:
        label += f" · {LOGIN_NODE if is_login_node else OTHER_NODES}"
    return label


def _known(probes: pd.DataFrame) -> pd.DataFrame:
    """Watches of a node that knew the credential and got at least one replay."""
    return probes[probes["accepted_before"].astype(bool) & (probes["replays"] > 0)]


def _is_cut_short(frame: pd.DataFrame) -> pd.Series:
    """Still accepted when the end of the run stopped the watch: neither lag nor bound."""
    return ~frame["is_complete"].astype(bool) & frame["rejected_after_ms"].isna()


def _watched(probes: pd.DataFrame) -> pd.DataFrame:
    """Watches that say something about revocation: the node knew the credential, a
    replay went out, and the watch ended by a rejection or by running its full time."""
    known = _known(probes)
    return known[~_is_cut_short(known)]


def lag_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Per series: how many watches, how fast they were rejected, what got through."""
    rows = []
    known = _known(probes)
    cut = known[_is_cut_short(known)].groupby("series").size()
    for series, group in _watched(probes).groupby("series", sort=False):
        rejected = group["rejected_after_ms"].dropna()
        censored = group[group["rejected_after_ms"].isna()]
        through = group["accepted_after_logout"]
        bound = (censored["expires_in_s"] + censored["leeway_s"]).dropna()
        first = group[group["rejected_after_ms"].notna()]
        rows.append({
            "series": series,
            "watches": len(group),
            "rejected": len(rejected),
            "p50_ms": float(rejected.median()) if len(rejected) else math.nan,
            "p90_ms": float(rejected.quantile(0.9)) if len(rejected) else math.nan,
            "max_ms": float(rejected.max()) if len(rejected) else math.nan,
            "not_rejected": len(censored),
            "cut_short": int(cut.get(series, 0)),
            "watched_up_to_s": float(censored["observed_s"].max()) if len(censored) else math.nan,
            "bound_s": float(bound.median()) if len(bound) else math.nan,
            "accepted_after_logout": int(through.sum()),
            "watches_with_acceptance": int((through > 0).sum()),
            "max_accepted": int(through.max()) if len(through) else 0,
            # Every rejection came at the very first replay: the lag is below what the
            # probe resolves, and the time shown is only when that replay left.
            "at_first_replay": bool(len(first)) and bool((first["replays"] == 1).all()),
            # Rejected only once the token itself expired: that is expiry, not revocation.
            "at_expiry": int((group["rejected_after_ms"] / 1000
                              >= group["expires_in_s"] - EXPIRY_MARGIN_S).sum()),
            "interval_ms": float(group["interval_ms"].median()),
        })
    return pd.DataFrame(rows)


def _lag_text(row: pd.Series) -> str:
    if row["rejected"] == 0:
        text = (f"never rejected while watched (up to {number(row['watched_up_to_s'], 1)} s); "
                f"bound: the remaining lifetime, ~{number(row['bound_s'], 0)} s")
    elif row["at_expiry"] == row["rejected"]:
        text = (f"rejected only when the token expired: after {number(row['p50_ms'] / 1000, 2)} "
                f"s (median), {number(row['max_ms'] / 1000, 2)} s at most")
    elif row["at_first_replay"] and row["not_rejected"] == 0:
        text = (f"rejected at the first replay (it left {number(row['p50_ms'], 1)} ms after "
                f"the logout's answer, median; {number(row['max_ms'], 1)} ms at most)")
    else:
        text = (f"rejected after {number(row['p50_ms'], 1)} ms (median), "
                f"{number(row['max_ms'], 1)} ms at most")
    if row["rejected"] and row["not_rejected"]:
        text += f"; {row['not_rejected']} of {row['watches']} never, bound ~" \
                f"{number(row['bound_s'], 0)} s"
    if row["cut_short"]:
        text += f"; {row['cut_short']} more cut short by the end of the run (left out)"
    return text


def lag_lines(probes: pd.DataFrame) -> list[str]:
    """The revocation-lag table for report.md."""
    table = lag_table(probes)
    if table.empty:
        return []
    interval = number(float(table["interval_ms"].median()), 0)
    lines = [f"Time from the logout's answer to the first rejected replay of the old credential "
             f"(each node replayed every {interval} ms, under the cell's load), and how many "
             "replays were still accepted after logout. \"At the first replay\" means the lag "
             "is below what the probe resolves: the time shown is when that replay left.", "",
             "| strategy | watches | time to reject | accepted after logout "
             "| watches with any |", "|---|---|---|---|---|"]
    for _, row in table.iterrows():
        lines.append(f"| {row['series']} | {row['watches']} | {_lag_text(row)} | "
                     f"{row['accepted_after_logout']:,} (max {row['max_accepted']} in one) | "
                     f"{row['watches_with_acceptance']} of {row['watches']} |")
    status = probes["before_status"]
    unchecked = probes[status.notna() & ~status.isin([200, 401])]
    if len(unchecked):
        codes = ", ".join(str(int(c)) for c in sorted(set(unchecked["before_status"])))
        lines += ["", f"{len(unchecked)} checks before logout got no clear answer (HTTP "
                  f"{codes}; 0 is a transport error): those nodes are left out of the table."]
    return [*lines, ""]


def dead_everywhere(probes: pd.DataFrame) -> pd.DataFrame:
    """Per trial and credential: when every node that knew it had rejected it.

    This is the lag a user of a multi-node service lives with: the credential is
    revoked when the last node stops accepting it. NaN (censored) when any node was
    still accepting when the watch ended.
    """
    known = _known(probes)
    cut_trials = set(known.loc[_is_cut_short(known), "trial"])
    watched = known[~known["trial"].isin(cut_trials)]  # a trial cut short says nothing
    rows = []
    for (trial, credential), group in watched.groupby(["trial", "credential"], sort=False):
        strategy = str(group["strategy"].iloc[0])
        lags = group["rejected_after_ms"]
        rows.append({"trial": trial, "label": credential_label(strategy, str(credential)),
                     "dead_ms": float(lags.max()) if lags.notna().all() else math.nan,
                     "accepted_after_logout": int(group["accepted_after_logout"].sum())})
    return pd.DataFrame(rows, columns=["trial", "label", "dead_ms", "accepted_after_logout"])


def plot_lag_cdf(probes: pd.DataFrame, caption: str) -> Figure:
    """Share of logouts after which the credential was dead on every node, by time.

    One line per strategy; a line that stays below 1 had trials whose credential was
    still accepted somewhere when the watch ended.
    """
    trials = dead_everywhere(probes)
    labels = list(dict.fromkeys(trials["label"]))
    # Inches: the plot 3.2, axis labels 0.7, a legend line 0.17 each, title and caption 0.7.
    legend = 0.17 * len(labels)
    height = 3.2 + 0.7 + legend + 0.7
    figure = plt.figure(figsize=(10, height))
    axes = figure.add_axes((0.08, (0.35 + legend + 0.7) / height, 0.9, 3.2 / height))
    styles = ["-", "--", ":", "-."]
    for index, label in enumerate(labels):
        group = trials[trials["label"] == label]
        lags = np.sort(group["dead_ms"].dropna().to_numpy())
        total = len(group)
        # A lag of 0 cannot sit on a log axis: 0.01 ms stands for "at once".
        xs = np.concatenate([[0.01], np.maximum(lags, 0.01)])
        ys = np.concatenate([[0.0], np.arange(1, len(lags) + 1) / total])
        text = label if len(lags) == total else \
            f"{label} ({total - len(lags)} of {total} still accepted when the watch ended)"
        axes.step(xs, ys, where="post", label=text, linestyle=styles[index // 10 % 4])
    axes.set_xscale("log")
    axes.set_xlabel("time from the logout's answer until every node rejected the credential, "
                    "ms (log scale)")
    axes.set_ylabel("share of logouts")
    axes.set_ylim(0, 1.05)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left", frameon=False,
                bbox_to_anchor=(0.0, -0.6 / 3.2))  # below the axis label
    figure.suptitle("Revocation lag: how long a logged-out credential keeps working",
                    fontsize=11, x=0.01, ha="left")
    figure.text(0.01, 0.005, caption, fontsize=7, color="#555555", ha="left", va="bottom")
    return figure


def strategy_of(series: str) -> str:
    """The series without its node scope: one strategy, both kinds of node."""
    for scope in (LOGIN_NODE, OTHER_NODES):
        series = series.removesuffix(f" · {scope}")
    return series


def revocation_summary(probes: pd.DataFrame) -> str:
    """A short account per kind of outcome, for the article's Revocation row."""
    table = lag_table(probes)
    if table.empty:
        return ""
    is_at_once = (table["not_rejected"] == 0) & (table["accepted_after_logout"] == 0)
    leaky_strategies = {strategy_of(s) for s in table.loc[~is_at_once, "series"]}
    at_once = list(dict.fromkeys(strategy_of(s) for s in table.loc[is_at_once, "series"]))
    # A strategy is "at once" only if it is at once on every node.
    at_once = [s for s in at_once if s not in leaky_strategies]
    parts = []
    if at_once:
        listed = table[is_at_once & table["series"].map(strategy_of).isin(at_once)]
        worst = number(float(listed["max_ms"].max()), 1)
        parts.append(f"nothing accepted after logout, the first replay on every node rejected "
                     f"(<= {worst} ms): " + "; ".join(at_once))
    by_strategy: dict[str, list[tuple[str, str, int]]] = {}  # (series, outcome, accepted)
    for _, row in table[~is_at_once].iterrows():
        if row["rejected"] == 0:
            what = (f"never rejected in {number(row['watched_up_to_s'], 0)} s watched "
                    f"(bound ~{number(row['bound_s'], 0)} s)")
        elif row["at_expiry"] == row["rejected"]:
            what = f"accepted until the token expired ({number(row['max_ms'] / 1000, 1)} s)"
        else:
            what = f"rejected after up to {number(row['max_ms'], 1)} ms"
        by_strategy.setdefault(strategy_of(row["series"]), []).append(
            (row["series"], what, int(row["accepted_after_logout"])))
    for strategy, outcomes in by_strategy.items():
        scopes = {o[0] for o in outcomes}
        whats = {o[1] for o in outcomes}
        if len(whats) == 1 and (len(scopes) > 1 or scopes == {strategy}):
            where = " (every node)" if len(scopes) > 1 else ""
            parts.append(f"{strategy}{where}: {whats.pop()}, "
                         f"{sum(o[2] for o in outcomes):,} replays accepted after logout")
        else:
            parts += [f"{series}: {what}, {n:,} replays accepted after logout"
                      for series, what, n in outcomes]
    return ". ".join(parts)
