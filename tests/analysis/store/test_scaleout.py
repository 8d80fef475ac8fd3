"""The scale-out model on synthetic inputs of known answer: the bound, the USL fit, the checks,
the Scalability row's sentences and the chart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from analysis.store.scaleout import (
    NODES,
    STORE,
    ModeCosts,
    NodePoint,
    StoreCeiling,
    check_terms,
    fit_measured,
    fit_usl,
    node_capacity_rps,
    predict,
    store_capacity_rps,
    usl_refusal,
)
from analysis.store.scaleout_report import plot_scaleout, scalability_summary

REDIS = StoreCeiling("redis", 100_000.0, 10.0)
SESSION = ModeCosts("session-redis", "session redis", 100.0, None, 2.0, "redis")
JWT = ModeCosts("jwt-hs256", "jwt HS256", 125.0, None, 0.0, None)


def usl(lam: float, sigma: float, kappa: float, n: float) -> float:
    """The law itself, written out independently of the module's UslFit.predict."""
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


# The bound -------------------------------------------------------------------------------

def test_a_node_serves_cores_times_a_million_over_its_cpu_per_request() -> None:
    assert node_capacity_rps(100.0) == 10_000.0
    assert node_capacity_rps(125.0) == 8_000.0
    assert node_capacity_rps(100.0, cores_per_node=2.0) == 20_000.0
    with pytest.raises(ValueError, match="positive"):
        node_capacity_rps(0.0)


def test_a_store_serves_its_ceiling_over_its_ops_per_request_and_never_caps_at_zero_ops() -> None:
    assert store_capacity_rps(100_000.0, 2.0) == 50_000.0
    assert store_capacity_rps(100_000.0, 0.5) == 200_000.0
    assert math.isinf(store_capacity_rps(100_000.0, 0.0))
    with pytest.raises(ValueError):
        store_capacity_rps(100_000.0, -1.0)


def test_the_store_caps_from_the_node_count_that_reaches_its_capacity_exactly() -> None:
    # 10,000 req/s a node; 100,000 ops/s at 2 ops per request = 50,000 req/s: 5 nodes.
    p = predict(SESSION, REDIS, [1, 4, 5, 6, 128])
    assert (p.node_rps, p.store_rps, p.cap_nodes, p.cap_nodes_range) == (10_000, 50_000, 5, None)
    assert [(q.nodes, q.rps, q.bound_by) for q in p.points] == [
        (1, 10_000, NODES), (4, 40_000, NODES), (5, 50_000, STORE), (6, 50_000, STORE),
        (128, 50_000, STORE)]
    assert p.rps_at(3) == 30_000 and p.rps_at(1000) == 50_000


def test_a_cap_between_node_counts_rounds_up() -> None:
    # 55,000 req/s of store over 10,000 a node: 5 nodes give 50,000 (nodes bind), 6 the cap.
    p = predict(SESSION, StoreCeiling("redis", 110_000.0), [5, 6])
    assert p.cap_nodes == 6
    assert [(q.rps, q.bound_by) for q in p.points] == [(50_000, NODES), (55_000, STORE)]


def test_float_rounding_does_not_add_a_node_at_an_exact_boundary() -> None:
    # 10^6 / 110 µs = 9,090.9 req/s; 100,000 / that is 11.000000000000002 in floating point.
    mode = ModeCosts("s", "s", 110.0, None, 1.0, "redis")
    assert predict(mode, REDIS, [11]).cap_nodes == 11


def test_a_store_weaker_than_one_node_caps_from_one_node() -> None:
    mode = ModeCosts("s", "s", 100.0, None, 1.0, "redis")
    p = predict(mode, StoreCeiling("redis", 4_000.0), [1, 2])
    assert p.cap_nodes == 1
    assert [q.rps for q in p.points] == [4_000, 4_000]


def test_no_store_ops_never_caps_and_throughput_grows_with_nodes() -> None:
    p = predict(JWT, REDIS, [1, 2, 128])
    assert p.cap_nodes is None and p.cap_nodes_range is None and math.isinf(p.store_rps)
    assert [(q.rps, q.bound_by) for q in p.points] == [
        (8_000, NODES), (16_000, NODES), (1_024_000, NODES)]
    assert predict(JWT, None, [3]).points[0].rps == 24_000  # no store needed at all


def test_a_store_in_each_nodes_memory_never_caps() -> None:
    mode = ModeCosts("session-memory", "session memory", 100.0, None, 1.0, "memory")
    assert predict(mode, None, [64]).cap_nodes is None


def test_a_shared_store_without_its_ceiling_or_bad_node_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="ceiling"):
        predict(SESSION, None, [1])
    with pytest.raises(ValueError, match="start at 1"):
        predict(JWT, None, [0, 1])


def test_the_node_cost_range_gives_the_cap_range_and_the_throughput_band() -> None:
    # 80 µs: 12,500 req/s a node, capped from 4 nodes; 125 µs: 8,000, from 7 (6.25 -> 7).
    mode = ModeCosts("s", "s", 100.0, (80.0, 125.0), 2.0, "redis")
    p = predict(mode, REDIS, [2, 5])
    assert p.cap_nodes == 5 and p.cap_nodes_range == (4, 7)
    assert [(q.rps_low, q.rps, q.rps_high) for q in p.points] == [
        (16_000, 20_000, 25_000), (40_000, 50_000, 50_000)]
    reversed_range = ModeCosts("s", "s", 100.0, (125.0, 80.0), 2.0, "redis")
    assert predict(reversed_range, REDIS, [5]).cap_nodes_range == (4, 7)


# The Universal Scalability Law -----------------------------------------------------------

LAM, SIGMA, KAPPA = 1_000.0, 0.05, 0.002
COUNTS = [1, 2, 4, 8, 16, 32]


def test_the_fit_recovers_the_law_from_points_on_the_curve() -> None:
    fit = fit_usl([(n, usl(LAM, SIGMA, KAPPA, n)) for n in COUNTS])
    assert fit is not None
    assert fit.lam == pytest.approx(LAM, rel=1e-9)
    assert fit.sigma == pytest.approx(SIGMA, rel=1e-9)
    assert fit.kappa == pytest.approx(KAPPA, rel=1e-9)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.node_counts == tuple(COUNTS)
    assert fit.peak_nodes == pytest.approx(math.sqrt((1 - SIGMA) / KAPPA))  # 21.8 nodes
    assert fit.predict(100) == pytest.approx(usl(LAM, SIGMA, KAPPA, 100))


def test_the_fit_needs_no_single_node_point() -> None:
    fit = fit_usl([(n, usl(LAM, SIGMA, KAPPA, n)) for n in (2, 3, 6, 12)])
    assert fit is not None
    assert (fit.lam, fit.sigma, fit.kappa) == pytest.approx((LAM, SIGMA, KAPPA), rel=1e-9)


def test_the_fit_recovers_the_law_through_small_noise_over_repeats() -> None:
    rng = np.random.default_rng(7)
    points = [(n, usl(LAM, SIGMA, KAPPA, n) * (1 + rng.normal(0, 0.01)))
              for n in [1, 2, 4, 8, 16, 32, 64] for _ in range(3)]
    fit = fit_usl(points)
    assert fit is not None
    assert fit.lam == pytest.approx(LAM, rel=0.03)
    assert fit.sigma == pytest.approx(SIGMA, abs=0.01)
    assert fit.kappa == pytest.approx(KAPPA, rel=0.15)
    assert fit.r_squared > 0.99
    assert fit.peak_nodes == pytest.approx(21.8, rel=0.1)


def test_without_coherency_the_fit_never_peaks_and_linear_scaling_has_no_contention() -> None:
    amdahl = fit_usl([(n, usl(LAM, 0.1, 0.0, n)) for n in COUNTS])
    assert amdahl is not None
    assert amdahl.kappa == pytest.approx(0.0, abs=1e-12) and amdahl.peak_nodes is None
    assert amdahl.sigma == pytest.approx(0.1)
    linear = fit_usl([(n, LAM * n) for n in COUNTS])
    assert linear is not None
    assert (linear.lam, linear.sigma, linear.kappa) == pytest.approx((LAM, 0.0, 0.0), abs=1e-9)


def test_superlinear_points_are_held_to_non_negative_contention_and_coherency() -> None:
    fit = fit_usl([(1, 1_000.0), (2, 2_200.0), (4, 4_700.0), (8, 9_900.0)])
    assert fit is not None
    assert fit.sigma == 0.0 and fit.kappa == 0.0  # a negative sigma would fit better
    assert fit.lam > 1_000.0


def test_the_fit_refuses_fewer_than_four_node_counts_and_says_why() -> None:
    repeats = [(n, usl(LAM, SIGMA, KAPPA, n)) for n in (1, 2, 4) for _ in range(5)]
    assert fit_usl(repeats) is None
    assert usl_refusal(repeats) == ("the scalability law needs measured req/s at 4 or more "
                                    "node counts on separate cores; there are 3 (1, 2, 4)")
    assert usl_refusal([(n, 1.0) for n in COUNTS]) is None
    assert fit_usl([(n, 0.0) for n in COUNTS]) is None  # zero req/s is not a measurement


def test_only_points_on_separate_cores_count_for_the_fit() -> None:
    separate = [NodePoint("k", n, usl(LAM, SIGMA, KAPPA, n), True) for n in (1, 2, 4, 8)]
    shared = [NodePoint("k", n, 3_000.0, False) for n in (16, 32)]  # flat: the cores ran out
    other = [NodePoint("other", 64, 1.0, True)]
    fit = fit_measured(separate + shared + other, "k")
    assert fit is not None
    assert fit.node_counts == (1, 2, 4, 8)
    assert (fit.sigma, fit.kappa) == pytest.approx((SIGMA, KAPPA), rel=1e-9)
    assert fit_measured(separate[:3] + shared, "k") is None  # 5 node counts, 3 on own cores


# The checks ------------------------------------------------------------------------------

def test_each_term_is_checked_against_its_own_measurement_with_the_sign_of_the_gap() -> None:
    checks = check_terms([SESSION, JWT], {"session-redis": 9_346.0, "jwt-hs256": 10_000.0},
                         [REDIS, StoreCeiling("postgres", 30_000.0)])
    by_key = {c.key: c for c in checks}
    assert set(by_key) == {"session-redis", "jwt-hs256", "redis"}  # postgres: no CPU per op
    assert by_key["session-redis"].relative_difference == pytest.approx(0.07, abs=0.001)
    assert by_key["jwt-hs256"].relative_difference == pytest.approx(-0.2)  # model 8,000
    # Redis at 10 µs per op: 100,000 ops/s by the model, 100,000 measured.
    assert by_key["redis"].term == STORE
    assert by_key["redis"].relative_difference == pytest.approx(0.0)
    slow = check_terms([], {}, [StoreCeiling("redis", 125_000.0, 10.0)])
    assert slow[0].relative_difference == pytest.approx(-0.2)
    assert by_key["session-redis"].text == ("session-redis: a node 10,000 req/s by the model, "
                                            "9,346 measured (+7%)")
    assert check_terms([SESSION], {}, []) == []  # nothing measured, nothing checked


# The sentences ---------------------------------------------------------------------------

def test_the_summary_states_the_cap_with_the_figures_it_rests_on() -> None:
    sentences = scalability_summary([predict(SESSION, REDIS, COUNTS), predict(JWT, REDIS, COUNTS)])
    assert sentences[0] == (
        "One Redis caps session redis from about 5 nodes on, at 50,000 req/s (store ceiling "
        "100,000 operations/s at 2.0 operations per request; a node serves 10,000 req/s on "
        "one core at 100 µs per request)")
    assert sentences[1].startswith("jwt HS256 never touches the store on its hot path, so its "
                                   "throughput grows with nodes up to the load balancer")
    assert "8,000 req/s on one core at 125 µs per request" in sentences[1]
    assert sentences[2] == ("Not run over several node counts: session redis, jwt HS256; their "
                            "node counts are extrapolated from the measured CPU per request "
                            "and store ceiling")


def test_the_summary_gives_the_cap_range_and_other_cores() -> None:
    mode = ModeCosts("s", "session redis", 100.0, (80.0, 125.0), 2.0, "redis")
    (sentence, _) = scalability_summary([predict(mode, REDIS, [1], cores_per_node=2.0)])
    assert "from about 3 nodes on, at 50,000 req/s; 2 to 4 over the node cost's range" in sentence
    assert "a node serves 20,000 req/s on 2.0 cores at 100 µs per request" in sentence


def test_the_summary_says_what_was_measured_against_the_bound_and_the_fit() -> None:
    mode = ModeCosts("k", "jwt HS256", 1_000.0, None, 0.0, None)  # 1,000 req/s a node
    measured = [NodePoint("k", n, usl(LAM, SIGMA, KAPPA, n), True) for n in COUNTS]
    sentences = scalability_summary([predict(mode, None, COUNTS)], measured=measured)
    # At 32 nodes: 32,000 / (1 + 0.05 x 31 + 0.002 x 32 x 31) = 7,058 req/s, the bound 32,000.
    assert sentences[1] == (
        "jwt HS256: measured on separate cores at 1, 2, 4, 8, 16, 32 node(s), 7,058 req/s "
        "at 32 (the bound 32,000, +353%); beyond 32 nodes the figures are extrapolated. "
        "Scalability law fitted over 6 node counts: lambda 1,000 req/s, contention sigma "
        "0.050, coherency kappa 0.0020, R² 1.00; it peaks at about 22 nodes, "
        "7,398 req/s (extrapolated)")
    assert len(sentences) == 2


def test_the_summary_says_why_no_law_was_fitted_and_what_shared_cores_cannot_show() -> None:
    measured = [NodePoint("session-redis", 1, 9_000.0, True),
                NodePoint("session-redis", 2, 17_000.0, True),
                NodePoint("jwt-hs256", 4, 7_000.0, False)]
    sentences = scalability_summary([predict(SESSION, REDIS, COUNTS),
                                     predict(JWT, REDIS, COUNTS)], measured=measured)
    assert sentences[2] == (
        "session redis: measured on separate cores at 1, 2 node(s), 17,000 req/s at 2 (the "
        "bound 20,000, +18%); beyond 2 nodes the figures are extrapolated. No scalability law "
        "fitted: the scalability law needs measured req/s at 4 or more node counts on "
        "separate cores; there are 2 (1, 2)")
    assert sentences[3] == ("jwt HS256: its multi-node points all shared cores, which cannot "
                            "show scaling; every node count above is extrapolated")
    assert len(sentences) == 4


# The chart -------------------------------------------------------------------------------

def test_the_chart_draws_one_line_per_mode_and_tells_measured_from_predicted() -> None:
    measured = [NodePoint("session-redis", n, 9_000.0 * n, True) for n in (1, 2, 4)]
    measured.append(NodePoint("jwt-hs256", 8, 7_000.0, False))
    predictions = [predict(SESSION, REDIS, [1]), predict(JWT, REDIS, [1])]
    figure = plot_scaleout(predictions, measured=measured, caption="run 1")
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["session redis", "jwt HS256"]
    xs, ys = (np.asarray(lines[0].get_xdata()), np.asarray(lines[0].get_ydata()))
    assert xs.tolist() == list(range(1, 129))  # redrawn over 1..128 nodes
    assert ys[-1] == 50_000.0 and np.asarray(lines[1].get_ydata())[-1] == 1_024_000.0
    assert axes.get_xscale() == "log" and axes.get_yscale() == "log"
    legend = axes.get_legend()
    assert legend is not None
    labels = [text.get_text() for text in legend.get_texts()]
    assert any(label.startswith("measured") for label in labels)
    assert any(label.startswith("predicted") for label in labels)
    assert "measured, nodes sharing cores (cannot show scaling)" in labels
    # The store's cap marked at 5 nodes on the session line, the measured points drawn.
    offsets = [(float(x), float(y)) for c in axes.collections if isinstance(c, PathCollection)
               for x, y in np.asarray(c.get_offsets()).tolist()]
    assert (5.0, 50_000.0) in offsets
    assert {(1.0, 9_000.0), (2.0, 18_000.0), (4.0, 36_000.0), (8.0, 7_000.0)} <= set(offsets)
    assert "store caps from 5" in [t.get_text() for t in axes.texts]
    assert axes.get_xlabel() and axes.get_ylabel() and figure.texts


def test_the_chart_says_when_nothing_was_measured() -> None:
    figure = plot_scaleout([predict(JWT, None, [1])], nodes=range(1, 9))
    legend = figure.axes[0].get_legend()
    assert legend is not None
    assert "measured: no node counts in this run" in [t.get_text() for t in legend.get_texts()]
    assert len(figure.axes[0].get_lines()) == 1
