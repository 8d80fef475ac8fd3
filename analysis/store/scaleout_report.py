"""The scale-out model in a report: the Scalability row's sentences and the chart.

Every figure in the sentences is arithmetic on the inputs (measured CPU per request,
store ceilings, node points); each sentence says which figures were measured and which
are extrapolated. The Agg backend is forced: charts are drawn to files, never to a screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from analysis.report.formatting import number
from analysis.report.plots import finish
from analysis.store.scaleout import (
    PER_NODE_STORES,
    STORE_NAMES,
    NodePoint,
    Prediction,
    UslFit,
    fit_usl,
    predict,
    separate_core_points,
    usl_refusal,
)

CHART_NODES = range(1, 129)
CHART_NOTE = ("Lines: the predicted bound min(N x one node's req/s, the store's ceiling / store "
              "operations per request), arithmetic on the measured CPU per request and store "
              "ceiling; past the node counts that ran it is extrapolated. "
              "Filled markers: measured.")


def _us(value: float) -> str:
    return number(value, 0 if value >= 100 else 1)


def _ops(value: float) -> str:
    return number(value, 1 if round(value, 1) == value else 2)


def _cores(cores: float) -> str:
    return "one core" if cores == 1 else f"{_ops(cores)} cores"


def _node_clause(p: Prediction) -> str:
    return (f"a node serves {number(p.node_rps, 0)} req/s on {_cores(p.cores_per_node)} "
            f"at {_us(p.mode.node_cpu_us)} µs per request")


def prediction_sentence(p: Prediction) -> str:
    """The bound in words: where the store caps this configuration, or that it never does."""
    mode = p.mode
    if mode.store_kind in PER_NODE_STORES and mode.store_ops_per_request > 0:
        return (f"{mode.label} keeps its store in each node's own memory: no shared store caps "
                f"it, but what one node stores never reaches the others ({_node_clause(p)})")
    if p.cap_nodes is None or p.store is None:
        return (f"{mode.label} never touches the store on its hot path, so its throughput "
                f"grows with nodes up to the load balancer ({_node_clause(p)})")
    store = STORE_NAMES.get(p.store.kind, p.store.kind)
    spread = ""
    if p.cap_nodes_range is not None and p.cap_nodes_range[0] != p.cap_nodes_range[1]:
        spread = f"; {p.cap_nodes_range[0]} to {p.cap_nodes_range[1]} over the node cost's range"
    return (f"One {store} caps {mode.label} from about {p.cap_nodes} nodes on, at "
            f"{number(p.store_rps, 0)} req/s{spread} (store ceiling "
            f"{number(p.store.ops_per_s, 0)} operations/s at "
            f"{_ops(mode.store_ops_per_request)} operations per request; {_node_clause(p)})")


def measured_sentence(p: Prediction, points: Sequence[tuple[int, float]],
                      fit: UslFit | None) -> str:
    """What ran over node counts on separate cores, against the bound, and the USL fit."""
    label = p.mode.label
    if not points:
        return (f"{label}: its multi-node points all shared cores, which cannot show scaling; "
                "every node count above is extrapolated")
    top = max(n for n, _ in points)
    rps = median(x for n, x in points if n == top)
    bound = p.rps_at(top)
    counts = ", ".join(str(n) for n in sorted({n for n, _ in points}))
    text = (f"{label}: measured on separate cores at {counts} node(s), {number(rps, 0)} req/s "
            f"at {top} (the bound {number(bound, 0)}, {bound / rps - 1:+.0%}); beyond {top} "
            "nodes the figures are extrapolated")
    if fit is None:
        why = usl_refusal(points) or "no lambda > 0 with sigma, kappa >= 0 fits the points"
        return f"{text}. No scalability law fitted: {why}"
    peak = fit.peak_nodes
    where = ("it never peaks (coherency 0)" if peak is None
             else f"it peaks at about {number(peak, 0)} nodes, {number(fit.predict(peak), 0)} "
                  "req/s (extrapolated)")
    return (f"{text}. Scalability law fitted over {len(fit.node_counts)} node counts: "
            f"lambda {number(fit.lam, 0)} req/s, contention sigma {fit.sigma:.3f}, "
            f"coherency kappa {fit.kappa:.4f}, R² {fit.r_squared:.2f}; {where}")


def scalability_summary(predictions: Sequence[Prediction],
                        fits: Mapping[str, UslFit | None] | None = None,
                        measured: Sequence[NodePoint] = ()) -> list[str]:
    """Plain sentences for a report's Scalability row: the bound, then what was measured.

    `fits` by mode key; a key missing from it is fitted here from `measured`.
    """
    fits = fits or {}
    sentences = [prediction_sentence(p) for p in predictions]
    unmeasured = []
    for p in predictions:
        key = p.mode.key
        if not any(m.key == key for m in measured):
            unmeasured.append(p.mode.label)
            continue
        points = separate_core_points(measured, key)
        fit = fits[key] if key in fits else fit_usl(points)
        sentences.append(measured_sentence(p, points, fit))
    if unmeasured:
        sentences.append(f"Not run over several node counts: {', '.join(unmeasured)}; their "
                         "node counts are extrapolated from the measured CPU per request and "
                         "store ceiling")
    return sentences


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def plot_scaleout(predictions: Sequence[Prediction], measured: Sequence[NodePoint] = (),
                  nodes: Sequence[int] = CHART_NODES, caption: str = "") -> Figure:
    """Predicted cluster req/s against nodes per configuration (one line each), measured dots.

    Each prediction is redrawn over `nodes` from its own inputs. Hollow circles on a line
    (at powers of two) and the hollow diamond where the store starts to cap are predicted;
    filled circles are measured with each node on its own cores, crosses measured on
    shared cores (which cannot show scaling).
    """
    figure, axes = plt.subplots(figsize=(11, 5.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lowest, highest = min(nodes), max(nodes)
    drawn = {"range": False, "cap": False, "separate": False, "shared": False}
    caps = 0
    for index, given in enumerate(predictions):
        color = colors[index % len(colors)]
        curve = predict(given.mode, given.store, nodes, given.cores_per_node)
        xs = [q.nodes for q in curve.points]
        axes.plot(xs, [q.rps for q in curve.points], color=color, marker="o",
                  markerfacecolor="none", label=given.mode.label,
                  markevery=[i for i, n in enumerate(xs) if _is_power_of_two(n)])
        if given.mode.node_cpu_us_range is not None:
            axes.fill_between(xs, [q.rps_low for q in curve.points],
                              [q.rps_high for q in curve.points], color=color, alpha=0.12,
                              linewidth=0)
            drawn["range"] = True
        cap = curve.cap_nodes
        if cap is not None and lowest <= cap <= highest:
            axes.scatter([cap], [curve.rps_at(cap)], s=110, marker="D", facecolors="none",
                         edgecolors=color, linewidths=1.5, zorder=3)
            axes.annotate(f"store caps from {cap}", (cap, curve.rps_at(cap)), fontsize=7,
                          color=color, xytext=(-8, 8 + 11 * caps), textcoords="offset points",
                          ha="right")  # above-left (the lines rise from lower left), stacked
            drawn["cap"] = True
            caps += 1
        for separate in (True, False):
            mine = [m for m in measured if m.key == given.mode.key and m.rps > 0
                    and m.is_separate_cores == separate]
            if mine:
                axes.scatter([m.nodes for m in mine], [m.rps for m in mine], s=45, zorder=4,
                             color=color, marker="o" if separate else "x")
                drawn["separate" if separate else "shared"] = True
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks([n for n in nodes if _is_power_of_two(n)])
    axes.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    cores = _cores(predictions[0].cores_per_node) if predictions else "one core"
    axes.set_xlabel(f"target nodes behind one load balancer, each on {cores} of its own "
                    "(log scale)")
    axes.set_ylabel("requests/s the whole cluster can serve (log scale)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(handles=_legend(list(axes.get_lines()), drawn), loc="upper left",
                bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    title = "Scaling out: how many requests per second N nodes sharing one store can serve"
    return finish(figure, title, f"{caption.rstrip('. ')}. {CHART_NOTE}" if caption
                  else CHART_NOTE)


def _legend(lines: list[Line2D], drawn: Mapping[str, bool]) -> list[Artist]:
    """The configurations' lines, then what each kind of mark means."""
    grey = "#555555"
    handles: list[Artist] = [*lines, Line2D([], [], color=grey, marker="o",
                                            markerfacecolor="none",
                                            label="predicted: min(N x node, store)")]
    if drawn["range"]:
        handles.append(Patch(color=grey, alpha=0.2, label="predicted over the node cost's range"))
    if drawn["cap"]:
        handles.append(Line2D([], [], color=grey, marker="D", markerfacecolor="none",
                              linestyle="none", label="predicted: the store caps from here"))
    if drawn["separate"]:
        handles.append(Line2D([], [], color=grey, marker="o", linestyle="none",
                              label="measured, each node on its own cores"))
    if drawn["shared"]:
        handles.append(Line2D([], [], color=grey, marker="x", linestyle="none",
                              label="measured, nodes sharing cores (cannot show scaling)"))
    if not drawn["separate"] and not drawn["shared"]:
        handles.append(Line2D([], [], color="none", label="measured: no node counts in this run"))
    return handles
