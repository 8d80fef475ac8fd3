"""Charts: each takes the tidy DataFrame (and a caption) and returns a Figure.

Charts that list configurations list them in the answer's order (analysis.cost.table.ordered),
top to bottom, and chart the answer's figures: cost and capacity from the closed-loop
windows (cost_table), never a req/s that the load generator bounded. Charts of req/s
or latency draw closed-loop windows only and say so; a point whose windows the target
did not bound is marked. The Agg backend is forced: charts are drawn to files, never to
a screen.
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
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis.cost.table import comparable_groups, cost_table, ordered
from analysis.data.endpoints import ME, NOAUTH

PERCENTILE_COLUMNS = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "p99.9": "p99_9_ms"}


NOT_BOUND = "not target-bound: req/s is not the target's capacity"


def _hot(frame: pd.DataFrame) -> pd.DataFrame:
    """The closed-loop windows' hot rows (a fixed rate's req/s is what it was offered)."""
    if "rate_spec" in frame:
        frame = frame[frame["rate_spec"].fillna("") == ""]
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


def _lines(axes: Axes, hot: pd.DataFrame, by: str, x: str, y: str,
           mark_unbound: bool = False) -> None:
    """One line per config: the median of y (and x) over repeats at each value of `by`;
    mark_unbound crosses the points whose windows were not all target-bound."""
    columns = list(dict.fromkeys(c for c in (x, y) if c != by))
    hot = hot.assign(is_bound=hot["bottleneck"] == "target") if "bottleneck" in hot else \
        hot.assign(is_bound=True)
    loose = []
    for config, group in hot.groupby("config"):
        points = group.groupby(by)[columns].median().reset_index().sort_values(x)
        axes.plot(points[x], points[y], marker="o", label=config)
        bound = group.groupby(by)["is_bound"].all()
        loose.append(points[~points[by].map(bound).fillna(False).astype(bool)])
    crossed = pd.concat(loose) if loose else pd.DataFrame()
    if mark_unbound and len(crossed):  # after the lines: its legend entry comes last
        axes.scatter(crossed[x], crossed[y], marker="x", s=70, color="black", zorder=3,
                     label=NOT_BOUND)


def finish(figure: Figure, title: str, caption: str) -> Figure:
    """Title the figure, put the run's caption under it, and lay it out."""
    figure.suptitle(title, fontsize=11, x=0.01, ha="left")
    lines = textwrap.wrap(caption, int(figure.get_figwidth() * 18))  # 7 pt: ~18 per inch
    figure.text(0.01, 0.005, "\n".join(lines), fontsize=7,
                color="#555555", ha="left", va="bottom")
    # Room for the caption's lines (7 pt, 1.2 spacing) under the axes' own labels.
    below = max(0.04, 0.01 + len(lines) * 7 * 1.2 / 72 / figure.get_figheight())
    figure.tight_layout(rect=(0, below, 1, 0.95))
    return figure


def _window_label(row: pd.Series) -> str:
    """'jwt-memory-HS256-read-u20-n1, fixed rate 50%' (config_table's window); a row with no
    window left to draw says so."""
    label = f"{row.get('config', row['key'])}, {row.get('window', 'closed loop')}"
    return label if row["p50_ms"] == row["p50_ms"] else f"{label} (no window kept)"


def plot_latency_percentiles(configs: pd.DataFrame, caption: str) -> Figure:
    """p50..p99.9 of GET /api/me per configuration and window (closed loop, fixed rate),
    from histograms merged over repeats, top to bottom in the answer's order (config_table
    keeps it)."""
    table = configs.assign(label=[_window_label(r) for _, r in configs.iterrows()])
    table = table.set_index("label")[list(PERCENTILE_COLUMNS.values())]
    figure, axes = plt.subplots(figsize=(10, 0.5 * len(table) + 1.8))
    for offset, (label, column) in enumerate(PERCENTILE_COLUMNS.items()):
        axes.barh([y + offset * 0.2 for y in range(len(table))], table[column], height=0.2,
                  label=label)
    axes.set_yticks([y + 0.3 for y in range(len(table))], table.index, fontsize=8)
    axes.invert_yaxis()  # the answer's first configuration on top
    axes.set_xscale("log")
    # Plain numbers at 1-2-5 steps: the default labels of minor ticks overlap on a short axis.
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("latency of GET /api/me, ms (log scale; histograms merged over the "
                    "windows the answer keeps)")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return finish(figure, "Latency percentiles, configurations in the answer's order "
                  "(cheapest first; closed loop and fixed rate apart)", caption)


def capacity_table(costs: pd.DataFrame) -> pd.DataFrame:
    """What the capacity chart draws, top to bottom in the answer's order: per configuration
    (cost_table) the req/s one core of target and store serves, 10^6 / cost, with the
    range from the cost's (low: 10^6 / its high end). Columns: key, group (its comparable
    group's name), capacity, low, high, is_target_bound, bottleneck."""
    if costs.empty:
        return pd.DataFrame(columns=["key", "group", "capacity", "low", "high",
                                     "is_target_bound", "bottleneck"])
    rows = pd.concat([group.assign(group=name) for name, group in comparable_groups(costs)])
    return pd.DataFrame({
        "key": rows["key"].astype(str), "group": rows["group"],
        "capacity": 1e6 / rows["server_cpu_us"], "low": 1e6 / rows["server_cpu_us_high"],
        "high": 1e6 / rows["server_cpu_us_low"], "is_target_bound": rows["is_target_bound"],
        "bottleneck": rows["bottleneck"]}).reset_index(drop=True)


def _separate_groups(axes: Axes, groups: list[str]) -> bool:
    """A dashed line between bars of different comparable groups (costs rank within a
    group only); True when it drew one."""
    starts = [at for at in range(1, len(groups)) if groups[at] != groups[at - 1]]
    for at in starts:
        axes.axhline(at - 0.5, color="#888888", linestyle="--", linewidth=0.8)
    return bool(starts)


def plot_capacity_by_config(frame: pd.DataFrame, caption: str) -> Figure:
    """Capacity per core of each configuration (10^6 / CPU µs per request), with its range
    over repeats, in the answer's order: the answer's figures, not a req/s the load
    generator may have bounded."""
    table = capacity_table(cost_table(frame))
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(table) + 1.9))
    y = list(range(len(table)))
    errors = [(table["capacity"] - table["low"]).fillna(0),
              (table["high"] - table["capacity"]).fillna(0)]
    axes.barh(y, table["capacity"], xerr=errors, color="#4878a8", capsize=3)
    for at, value, high in zip(y, table["capacity"], table["high"].fillna(table["capacity"]),
                               strict=True):
        axes.text(high, at, f"  {value:,.0f}", va="center", ha="left", fontsize=8)
    axes.set_yticks(y, table["key"], fontsize=8)
    axes.invert_yaxis()  # the answer's first (cheapest) configuration on top
    axes.margins(x=0.12)
    ranked = " within each scenario, users and nodes (dashed: a new group)" \
        if _separate_groups(axes, list(table["group"])) else ""
    axes.set_xlabel("req/s one core of target and store serves = 10^6 / CPU µs per request\n"
                    "(closed-loop windows; median over repeats, whiskers: their range)")
    return finish(figure, f"Capacity per core, the answer's order: cheapest first{ranked}",
                  caption)


def plot_throughput_by_config(frame: pd.DataFrame, caption: str) -> Figure:
    """The report's "throughput" chart: capacity per core (plot_capacity_by_config), since
    a closed loop's req/s measures the load generator wherever it was the limit."""
    return plot_capacity_by_config(frame, caption)


def plot_throughput_vs_users(frame: pd.DataFrame, caption: str) -> Figure:
    """Saturation curves: req/s of GET /api/me against user count, one line per config."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _lines(axes, _labelled(frame), "users", "users", "rps", mark_unbound=True)
    axes.set_xlabel("concurrent users")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("GET /api/me req/s (closed loop, median)")
    axes.legend(fontsize=7)
    return finish(figure, "Throughput against users", caption)


def plot_latency_vs_throughput(frame: pd.DataFrame, caption: str) -> Figure:
    """p99 latency against achieved req/s: where each configuration bends."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    _lines(axes, _labelled(frame), "users", "rps", "p99_ms")
    axes.set_xlabel("GET /api/me req/s (closed loop)")
    axes.set_ylabel("p99 latency, ms (closed loop)")
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
    _lines(left, hot, "nodes", "nodes", "rps", mark_unbound=True)
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
    left.set_ylabel("GET /api/me req/s (closed loop)")
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
    groups = [name for name, group in comparable_groups(table) for _ in range(len(group))]
    table = ordered(table).set_index("key")
    auth = table["auth_cpu_us"].fillna(0.0)
    rest = (table["target_cpu_us"] - auth).clip(lower=0)
    store = table["store_cpu_us"].fillna(0.0)
    order = table.index  # the answer's order: cheapest on top
    figure, axes = plt.subplots(figsize=(9, 0.4 * len(table) + 2.4))
    axes.barh(order, auth[order], label="auth step CPU (Server-Timing auth-cpu)",
              color="#c0504d")
    axes.barh(order, rest[order], left=auth[order],
              label="rest of the target (HTTP, framework, store client I/O)", color="#9bbb59")
    axes.barh(order, store[order], left=auth[order] + rest[order], label="store CPU",
              color="#4f81bd")
    axes.invert_yaxis()
    _separate_groups(axes, groups)
    total = (auth + rest + store).max() if len(table) else 0.0
    if total > 0:
        axes.set_xlim(0, 1.05 * total)
    axes.set_xlabel("CPU per request, µs (closed loop, median over repeats)")
    axes.tick_params(axis="y", labelsize=8)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2,
                frameon=False)
    return finish(figure, "Where the time goes: CPU per request, in the answer's order",
                  caption)


def plot_latency_vs_sessions(frame: pd.DataFrame, caption: str) -> Figure:
    """p50/p99 of GET /api/me (closed loop), and the store's memory growth, against live
    sessions."""
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
    left.set_ylabel("latency, ms (closed loop)")
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
