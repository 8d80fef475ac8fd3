"""Many nodes sharing one store: the bound on cluster throughput, the USL fit, their checks.

The bound: a node serves cores x 10^6 / (its CPU µs per request) req/s, a shared store
serves its ceiling (ops/s) / (store operations per request), and N nodes together serve
at most X(N) = min(N x node capacity, store capacity). Both terms rest on measurements
(the cells' CPU per request, the store's saturation throughput); any X(N) beyond the node
counts that ran is an extrapolation, and the wording says so.

Gunther's Universal Scalability Law, X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)),
is fitted only to measured points at 4 or more node counts on separate cores. scipy is not
installed, so the fit is a linear least squares (numpy) on the law's reciprocal form, see
fit_usl.

Pure functions; the report's sentences and chart are in analysis.store.scaleout_report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.report.formatting import number

NODES = "nodes"  # the binding term at N: the nodes' own CPU
STORE = "store"  # the binding term at N: the shared store's ceiling
MIN_USL_NODE_COUNTS = 4
STORE_NAMES = {"redis": "Redis", "postgres": "PostgreSQL", "memory": "memory store"}
# Not shared: a "memory" store lives in each node's process, its CPU is in the node's cost.
PER_NODE_STORES = ("memory",)
# A ratio this close under an integer is that integer: 5.000000001 nodes must not be 6.
_EPS = 1e-9


@dataclass(frozen=True)
class ModeCosts:
    """A configuration's measured target CPU per request (µs, one core) and store ops."""

    key: str
    label: str
    node_cpu_us: float
    node_cpu_us_range: tuple[float, float] | None = None
    store_ops_per_request: float = 0.0
    store_kind: str | None = None


@dataclass(frozen=True)
class StoreCeiling:
    """A single store's measured saturation throughput and its CPU per op at the cells' load.

    `cores`: the cores the store's CPU per op can use (1 for Redis's single thread).
    """

    kind: str
    ops_per_s: float
    cpu_us_per_op_at_load: float | None = None
    cores: float = 1.0


@dataclass(frozen=True)
class NodePoint:
    """A measured cluster throughput at a node count, from a run that varied nodes."""

    key: str
    nodes: int
    rps: float
    is_separate_cores: bool


@dataclass(frozen=True)
class PredictedPoint:
    """X(N) with the term that binds, and its range from the node cost's range."""

    nodes: int
    rps: float
    bound_by: str
    rps_low: float
    rps_high: float


@dataclass(frozen=True)
class Prediction:
    """The bound for one configuration over node counts, and where the store caps it."""

    mode: ModeCosts
    store: StoreCeiling | None
    cores_per_node: float
    node_rps: float
    store_rps: float
    points: tuple[PredictedPoint, ...]
    cap_nodes: int | None
    cap_nodes_range: tuple[int, int] | None

    def rps_at(self, nodes: int) -> float:
        """The bound at any node count (not only the predicted ones)."""
        return min(nodes * self.node_rps, self.store_rps)


def node_capacity_rps(cpu_us_per_request: float, cores_per_node: float = 1.0) -> float:
    """req/s one node serves: cores x 10^6 / its CPU µs per request."""
    if not cpu_us_per_request > 0 or not cores_per_node > 0:
        raise ValueError(f"need positive CPU per request and cores, got "
                         f"{cpu_us_per_request} µs on {cores_per_node} cores")
    return cores_per_node * 1e6 / cpu_us_per_request


def store_capacity_rps(ceiling_ops_per_s: float, ops_per_request: float) -> float:
    """req/s one store serves: its ceiling / ops per request (inf when requests never touch it)."""
    if ops_per_request < 0 or not ceiling_ops_per_s > 0:
        raise ValueError(f"need a positive ceiling and ops >= 0, got {ceiling_ops_per_s} ops/s "
                         f"at {ops_per_request} ops per request")
    return math.inf if ops_per_request == 0 else ceiling_ops_per_s / ops_per_request


def cap_node_count(node_rps: float, store_rps: float) -> int | None:
    """The smallest N with N x node capacity >= store capacity (None when never)."""
    if math.isinf(store_rps):
        return None
    return max(1, math.ceil(store_rps / node_rps - _EPS))


def _store_rps(mode: ModeCosts, store: StoreCeiling | None) -> float:
    if mode.store_ops_per_request == 0 or mode.store_kind in PER_NODE_STORES:
        return math.inf
    if store is None:
        raise ValueError(f"{mode.key} makes {mode.store_ops_per_request} store ops per "
                         "request: its store's ceiling is needed")
    return store_capacity_rps(store.ops_per_s, mode.store_ops_per_request)


def predict(mode: ModeCosts, store: StoreCeiling | None, nodes: Sequence[int],
            cores_per_node: float = 1.0) -> Prediction:
    """X(N) = min(N x node capacity, store capacity) at each N, and the cap's node count.

    store may be None only when the mode's hot path never touches a shared store.
    """
    if any(n < 1 for n in nodes):
        raise ValueError(f"node counts start at 1, got {sorted(nodes)[:1]}")
    node_rps = node_capacity_rps(mode.node_cpu_us, cores_per_node)
    store_rps = _store_rps(mode, store)
    cap = cap_node_count(node_rps, store_rps)
    # The dearer end of the node cost's range serves fewer req/s per node: a lower X(N),
    # and more nodes before the store caps.
    cheap_us, dear_us = sorted(mode.node_cpu_us_range or (mode.node_cpu_us, mode.node_cpu_us))
    low_rps = node_capacity_rps(dear_us, cores_per_node)
    high_rps = node_capacity_rps(cheap_us, cores_per_node)
    cap_range = None
    if mode.node_cpu_us_range is not None and cap is not None:
        cap_range = (cap_node_count(high_rps, store_rps) or cap,
                     cap_node_count(low_rps, store_rps) or cap)
    points = tuple(
        PredictedPoint(n, min(n * node_rps, store_rps),
                       STORE if cap is not None and n >= cap else NODES,
                       min(n * low_rps, store_rps), min(n * high_rps, store_rps))
        for n in nodes)
    return Prediction(mode, store, cores_per_node, node_rps, store_rps, points, cap, cap_range)


@dataclass(frozen=True)
class UslFit:
    """Gunther's USL fitted to measured points: lambda (req/s of one node), sigma, kappa, R²."""

    lam: float
    sigma: float
    kappa: float
    r_squared: float
    node_counts: tuple[int, ...]
    method: str

    @property
    def peak_nodes(self) -> float | None:
        """N* = sqrt((1 - sigma) / kappa), the peak (None when kappa = 0 or sigma >= 1)."""
        if self.kappa <= 0 or self.sigma >= 1:
            return None
        return math.sqrt((1 - self.sigma) / self.kappa)

    def predict(self, nodes: float) -> float:
        """X(N) by the fitted law."""
        return self.lam * nodes / (1 + self.sigma * (nodes - 1)
                                   + self.kappa * nodes * (nodes - 1))


USL_METHOD = ("linear least squares on N/X(N) = (1 + sigma (N-1) + kappa N (N-1)) / lambda, "
              "each point weighted by X(N)/N (its relative error), sigma, kappa >= 0")


def usl_refusal(points: Sequence[tuple[int, float]]) -> str | None:
    """Why the USL cannot be fitted to these points, or None when it can."""
    counts = sorted({n for n, x in points if x > 0})
    if len(counts) < MIN_USL_NODE_COUNTS:
        shown = ", ".join(str(n) for n in counts) or "none"
        return (f"the scalability law needs measured req/s at {MIN_USL_NODE_COUNTS} or more "
                f"node counts on separate cores; there are {len(counts)} ({shown})")
    return None


def fit_usl(points: Sequence[tuple[int, float]]) -> UslFit | None:
    """Fit the USL by least squares to (nodes, req/s) points; None below 4 distinct N.

    lambda comes from the fit, not from X(1) alone: the reciprocal form N/X is linear in
    (1/lambda, sigma/lambda, kappa/lambda), so every point informs lambda and no N = 1
    point is needed. Each row is weighted by X/N so a residual counts as a relative error
    (benchmark noise is roughly proportional). sigma, kappa >= 0 is enforced exactly: the
    constrained optimum is the best feasible one of the unconstrained fits with sigma
    and/or kappa held at 0. Repeats at one N are all kept. Points on the curve are
    recovered exactly.
    """
    if usl_refusal(points) is not None:
        return None
    used = [(n, x) for n, x in points if x > 0]
    n = np.array([p[0] for p in used], dtype=float)
    x = np.array([p[1] for p in used], dtype=float)
    weight = x / n
    columns = np.column_stack([np.ones_like(n), n - 1, n * (n - 1)]) * weight[:, None]
    target = (n / x) * weight  # = 1 for every row: N/X weighted by X/N
    best: tuple[float, np.ndarray] | None = None
    for free in ([0, 1, 2], [0, 1], [0, 2], [0]):
        solution, *_ = np.linalg.lstsq(columns[:, free], target, rcond=None)
        coefficients = np.zeros(3)
        coefficients[free] = solution
        if coefficients[0] <= 0 or (coefficients[1:] < 0).any():
            continue  # infeasible: lambda must be positive, sigma and kappa not negative
        residual = float(np.sum((columns @ coefficients - target) ** 2))
        if best is None or residual < best[0]:
            best = (residual, coefficients)
    if best is None:
        return None
    a, b, c = (float(v) for v in best[1])
    fit = UslFit(1 / a, b / a, c / a, math.nan, tuple(sorted({int(v) for v in n})), USL_METHOD)
    modelled = np.array([fit.predict(float(v)) for v in n])
    spread = float(np.sum((x - x.mean()) ** 2))
    r_squared = 1 - float(np.sum((x - modelled) ** 2)) / spread if spread > 0 else math.nan
    return UslFit(fit.lam, fit.sigma, fit.kappa, r_squared, fit.node_counts, USL_METHOD)


def separate_core_points(measured: Iterable[NodePoint], key: str) -> list[tuple[int, float]]:
    """The (nodes, req/s) of `key` measured with each node on its own cores.

    Nodes that share cores split the same CPU: adding one adds no capacity, so their
    req/s shows the cores, not how the configuration scales, and would fake contention.
    """
    return [(p.nodes, p.rps) for p in measured
            if p.key == key and p.is_separate_cores and p.rps > 0]


def fit_measured(measured: Iterable[NodePoint], key: str) -> UslFit | None:
    """fit_usl over `key`'s points measured on separate cores (None below 4 node counts)."""
    return fit_usl(separate_core_points(measured, key))


@dataclass(frozen=True)
class TermCheck:
    """One term of the bound against an independent measurement (+0.07: model 7 % above)."""

    term: str
    key: str
    model_rps: float
    measured_rps: float

    @property
    def relative_difference(self) -> float:
        """(model - measured) / measured."""
        return self.model_rps / self.measured_rps - 1

    @property
    def text(self) -> str:
        """The check in words, with both figures."""
        what = "a node" if self.term == NODES else "the store"
        unit = "req/s" if self.term == NODES else "ops/s"
        return (f"{self.key}: {what} {number(self.model_rps, 0)} {unit} by the model, "
                f"{number(self.measured_rps, 0)} measured ({self.relative_difference:+.0%})")


def check_terms(modes: Sequence[ModeCosts], node_rps_measured: Mapping[str, float],
                stores: Sequence[StoreCeiling] = (),
                cores_per_node: float = 1.0) -> list[TermCheck]:
    """Each term against its independent measurement, where there is one.

    Node: cores x 10^6 / CPU µs per request against the req/s of a closed-loop window in
    which the target was the bottleneck (`node_rps_measured`, by mode key). Store:
    cores x 10^6 / its CPU µs per op at the cells' load against its measured saturation
    throughput (redis-benchmark, pgbench).
    """
    checks = [TermCheck(NODES, m.key, node_capacity_rps(m.node_cpu_us, cores_per_node),
                        node_rps_measured[m.key])
              for m in modes if node_rps_measured.get(m.key, 0) > 0]
    checks += [TermCheck(STORE, s.kind, node_capacity_rps(s.cpu_us_per_op_at_load, s.cores),
                         s.ops_per_s)
               for s in stores if s.cpu_us_per_op_at_load and s.ops_per_s > 0]
    return checks
