"""Charts: each takes the tidy DataFrame (and a caption) and returns a Figure.

The Agg backend is forced: charts are drawn to files, never to a screen.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.costs import cost_table
from analysis.endpoints import ME, NOAUTH

PERCENTILE_COLUMNS = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "p99.9": "p99_9_ms"}


def _hot(frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)]
    if ok.empty:
        ok = frame[(frame["status"] == "ok") & (frame["endpoint"] == NOAUTH)]
    return ok


def _label(row: pd.Series) -> str:
    parts = [str(row["mode"])]
    if row["mode"] != "none":
        parts.append(str(row["store"]))
    if row["mode"] in ("jwt", "hybrid"):
        parts.append(str(row["alg"]))
        if row["revocation"] != "none":
            parts.append("blocklist" if row["revocation"] == "blocklist" else "pubsub")
        if row.get("verify_cache"):
            parts.append("cache")
    return " ".join(parts)


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """The measured GET /api/me rows, each with a readable 'config' label."""
    hot = _hot(frame).copy()
    hot["config"] = hot.apply(_label, axis=1)
    return hot


def _lines(axes: Axes, hot: pd.DataFrame, by: str, x: str, y: str) -> None:
    """One line per config: the median of y (and x) over repeats at each value of `by`."""
    columns = list(dict.fromkeys(c for c in (x, y) if c != by))
    for config, group in hot.groupby("config"):
        points = group.groupby(by)[columns].median().reset_index().sort_values(x)
        axes.plot(points[x], points[y], marker="o", label=config)


def finish(figure: Figure, title: str, caption: str) -> Figure:
    """Title the figure, put the run's caption under it, and lay it out."""
    figure.suptitle(title, fontsize=11, x=0.01, ha="left")
    lines = textwrap.wrap(caption, 170)
    figure.text(0.01, 0.005, "\n".join(lines), fontsize=7,
                color="#555555", ha="left", va="bottom")
    # Room for the caption's lines (7 pt, 1.2 spacing) under the axes' own labels.
    below = max(0.04, 0.01 + len(lines) * 7 * 1.2 / 72 / figure.get_figheight())
    figure.tight_layout(rect=(0, below, 1, 0.95))
    return figure


def plot_latency_percentiles(configs: pd.DataFrame, caption: str) -> Figure:
    """p50..p99.9 of GET /api/me per configuration, from histograms merged over repeats."""
    table = configs.set_index("key")[list(PERCENTILE_COLUMNS.values())].sort_values("p50_ms")
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(table) + 1.6))
    for offset, (label, column) in enumerate(PERCENTILE_COLUMNS.items()):
        axes.barh([y + offset * 0.2 for y in range(len(table))], table[column], height=0.2,
                  label=label)
    axes.set_yticks([y + 0.3 for y in range(len(table))], table.index, fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("latency of GET /api/me, ms (log scale)")
    axes.legend(fontsize=8, loc="lower right")
    return finish(figure, "Latency percentiles by configuration", caption)


def plot_throughput_by_config(frame: pd.DataFrame, caption: str) -> Figure:
    """Requests per second of GET /api/me per configuration, with the spread over repeats."""
    hot = _labelled(frame)
    hot["config"] = hot["config"] + " u" + hot["users"].astype(str)
    grouped = hot.groupby("config")["rps"]
    table = pd.DataFrame({"median": grouped.median(), "low": grouped.min(), "high": grouped.max()})
    table = table.sort_values("median")
    figure, axes = plt.subplots(figsize=(9, 0.4 * len(table) + 1.6))
    errors = [table["median"] - table["low"], table["high"] - table["median"]]
    axes.barh(table.index, table["median"], xerr=errors, color="#4878a8", capsize=3)
    axes.set_xlabel("GET /api/me requests per second (median; bars: min-max over repeats)")
    axes.tick_params(axis="y", labelsize=8)
    return finish(figure, "Throughput by configuration", caption)


def plot_throughput_vs_users(frame: pd.DataFrame, caption: str) -> Figure:
    """Saturation curves: req/s of GET /api/me against user count, one line per config."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _lines(axes, _labelled(frame), "users", "users", "rps")
    axes.set_xlabel("concurrent users")
    axes.set_ylabel("GET /api/me req/s (median)")
    axes.legend(fontsize=7)
    return finish(figure, "Throughput against users", caption)


def plot_latency_vs_throughput(frame: pd.DataFrame, caption: str) -> Figure:
    """p99 latency against achieved req/s: where each configuration bends."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _lines(axes, _labelled(frame), "users", "rps", "p99_ms")
    axes.set_xlabel("GET /api/me req/s")
    axes.set_ylabel("p99 latency, ms")
    axes.legend(fontsize=7)
    return finish(figure, "Latency against throughput", caption)


def plot_scaling(frame: pd.DataFrame, caption: str) -> Figure:
    """req/s against target nodes, and the error rate (memory sessions break on >1 node).

    Nodes that outnumber the cores the targets ran on share CPUs: those points are
    drawn hollow and named, so a flat line there reads as "no more cores", not
    "does not scale".
    """
    hot = _labelled(frame)
    hot["error_percent"] = 100 * hot["error_rate"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    _lines(left, hot, "nodes", "nodes", "rps")
    _lines(right, hot, "nodes", "nodes", "error_percent")
    if "is_oversubscribed" in hot:
        shared = hot[hot["is_oversubscribed"].fillna(False).astype(bool)]
        points = shared.groupby(["config", "nodes"])["rps"].median().reset_index()
        if len(points):
            left.scatter(points["nodes"], points["rps"], s=90, facecolors="none",
                         edgecolors="#c0504d", zorder=3,
                         label="more nodes than target cores (shared CPUs)")
    for axes in (left, right):
        axes.set_xlabel("target nodes")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("GET /api/me req/s")
    right.set_ylabel("failed requests, %")
    left.legend(fontsize=7)
    return finish(figure, "Scaling out", caption)


def plot_where_time_goes(frame: pd.DataFrame, caption: str) -> Figure:
    """CPU per request, split into the auth step, the rest of the target and the store.

    The floor (no auth) is drawn too: everything it spends is the HTTP server and the
    framework, which every mode pays as well.
    """
    table = cost_table(frame)
    if table.empty:
        table = pd.DataFrame(columns=["key", "target_cpu_us", "store_cpu_us", "auth_cpu_us"])
    table = table.set_index("key")
    auth = table["auth_cpu_us"].fillna(0.0)
    rest = (table["target_cpu_us"] - auth).clip(lower=0)
    store = table["store_cpu_us"].fillna(0.0)
    order = (rest + auth + store).sort_values().index
    figure, axes = plt.subplots(figsize=(9, 0.4 * len(table) + 2.2))
    axes.barh(order, auth[order], label="auth step CPU (Server-Timing auth-cpu)",
              color="#c0504d")
    axes.barh(order, rest[order], left=auth[order],
              label="rest of the target (HTTP, framework, store client I/O)", color="#9bbb59")
    axes.barh(order, store[order], left=auth[order] + rest[order], label="store CPU",
              color="#4f81bd")
    axes.set_xlabel("CPU per request, µs (median over repeats)")
    axes.tick_params(axis="y", labelsize=8)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3,
                frameon=False)
    return finish(figure, "Where the time goes: CPU per request", caption)


def plot_latency_vs_sessions(frame: pd.DataFrame, caption: str) -> Figure:
    """p50/p99 of GET /api/me, and the store's memory growth, against live sessions."""
    hot = _hot(frame)
    hot = hot[hot["scale"] > 0]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for store, group in hot.groupby("store"):
        curve = group.groupby("scale")[["p50_ms", "p99_ms"]].median().sort_index()
        left.plot(curve.index, curve["p50_ms"], marker="o", label=f"{store} p50")
        left.plot(curve.index, curve["p99_ms"], marker="x", linestyle="--", label=f"{store} p99")
        memory = group.groupby("scale")["store_used_memory_delta"].median().dropna()
        if not memory.empty:
            right.plot(memory.index, memory.values / 2**20, marker="o", label=store)
    for axes in (left, right):
        axes.set_xscale("log")
        axes.set_xlabel("live sessions in the store")
    left.set_ylabel("latency, ms")
    right.set_ylabel("store memory growth during the cell, MiB")
    left.legend(fontsize=7)
    return finish(figure, "Latency and store memory against live sessions", caption)


def plot_credential_bytes(frame: pd.DataFrame, caption: str) -> Figure:
    """Bytes of credential headers each request carries, per mode and algorithm."""
    cells = frame[(frame["status"] == "ok") & frame["credential_bytes"].notna()]
    cells = cells[cells["mode"] != "none"].drop_duplicates("cell").copy()
    cells["config"] = cells.apply(
        lambda r: "session cookie" if r["mode"] == "session" else f"{r['mode']} {r['alg']}", axis=1)
    table = cells.groupby("config")["credential_bytes"].max().sort_values()
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(table) + 1.6))
    axes.barh(table.index, table.values, color="#8064a2")
    for y, value in enumerate(table.values):
        axes.text(value, y, f" {int(value)} B", va="center", fontsize=8)
    axes.set_xlabel("credential bytes sent with every request")
    return finish(figure, "Credential bytes per request", caption)


def save_figure(figure: Figure, folder: Path, name: str) -> dict[str, Path]:
    """Write SVG and PNG, close the figure, return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in ("svg", "png"):
        path = folder / f"{name}.{kind}"
        figure.savefig(path, dpi=110)
        paths[kind] = path
    plt.close(figure)
    return paths
