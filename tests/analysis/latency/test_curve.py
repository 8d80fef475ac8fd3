"""Knees, rates under a p99 target, the knee table and the chart, from known points."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.data.endpoints import ME
from analysis.latency.curve import (
    curve_lines,
    curve_points,
    curve_section,
    generator_limits,
    knee,
    knee_table,
    max_rate_under,
)

# A target that holds 2 ms p99 up to 400 req/s, then queues; it completes ~450 req/s at most.
BENDING: list[tuple[float, float, float]] = [
    (100, 2.0, 100), (200, 2.1, 200), (300, 2.4, 300), (400, 4.0, 399), (500, 60.0, 450),
    (600, 900.0, 452)]


def test_the_knee_is_the_first_rate_whose_p99_bends() -> None:
    assert knee(BENDING) == 500  # 60 ms > 5 x 2 ms
    assert knee(list(reversed(BENDING))) == 500  # order does not matter


def test_a_spike_that_the_next_rate_takes_back_is_no_knee() -> None:
    spiky = [*BENDING[:2], (300, 14.0, 300), *BENDING[3:]]  # 14 ms at 300, 4 ms at 400
    assert knee(spiky) == 500
    assert knee([(100, 2.0, 100), (200, 30.0, 200), (300, 2.1, 300)]) is None


def test_one_hiccup_at_the_lowest_rate_does_not_move_the_baseline() -> None:
    hiccup = [(100, 9.0, 100), *BENDING[1:]]  # a 9 ms p99 at 100 req/s, 2.1 ms at 200
    assert knee(hiccup) == 500


def test_the_knee_is_also_where_throughput_falls_short() -> None:
    # p99 stays low (requests were dropped at the source, say) but only 80 % got through.
    assert knee([(100, 1.0, 100), (200, 1.1, 199), (300, 1.2, 240)]) == 300


def test_no_knee_in_a_flat_curve_and_none_without_points() -> None:
    assert knee([(100, 1.0, 100), (200, 1.2, 200)]) is None
    assert knee([]) is None
    assert knee([(100, math.nan, 100)]) is None


def test_the_highest_rate_under_a_p99_target_stops_at_the_first_miss() -> None:
    assert max_rate_under(BENDING, 10) == 400
    assert max_rate_under(BENDING, 2.2) == 200
    assert max_rate_under(BENDING, 1.0) is None
    # A later rate under the target after a miss does not count: the curve broke before it.
    assert max_rate_under([(100, 1, 100), (200, 9, 200), (300, 1, 300)], 5) == 100


def frame_of(curves: dict[str, list[tuple[float, float, float]]], repeats: int = 2,
             short: set[tuple[str, float]] | None = None) -> pd.DataFrame:
    rows = []
    for config, points in curves.items():
        for offered, p99, achieved in points:
            for repeat in range(1, repeats + 1):
                rows.append({
                    "cell": f"{config}-at{offered:g}-r{repeat}", "config": config,
                    "mode": config.split("-")[0], "status": "ok", "endpoint": ME,
                    "repeat": repeat, "rate_offered": float(offered),
                    "rate_achieved": float(achieved) + repeat - 1.5,
                    "p50_ms": p99 / 2, "p99_ms": p99 + (repeat - 1.5) * 0.01,
                    "is_generator_short": (config, offered) in (short or set()),
                })
    # A closed-loop row of the same configuration is no point of its curve.
    rows.append({"cell": "jwt-closed-r1", "config": "jwt-x", "mode": "jwt", "status": "ok",
                 "endpoint": ME, "repeat": 1, "rate_offered": math.nan,
                 "rate_achieved": math.nan, "p50_ms": 1.0, "p99_ms": 2.0,
                 "is_generator_short": False})
    return pd.DataFrame(rows)


def test_curve_points_are_medians_over_repeats_without_short_windows() -> None:
    frame = frame_of({"jwt-x": BENDING, "none-y": [(100, 1.0, 100), (200, 1.0, 200)]},
                     short={("none-y", 200)})
    points = curve_points(frame, ME)
    jwt = points[points["config"] == "jwt-x"]
    assert list(jwt["rate_offered"]) == [100, 200, 300, 400, 500, 600]
    assert list(jwt["p99_ms"]) == pytest.approx([p for _, p, _ in BENDING])  # median of 2
    assert (jwt["repeats"] == 2).all()
    assert list(points[points["config"] == "none-y"]["rate_offered"]) == [100]  # short: out


def test_the_knee_table_and_its_markdown() -> None:
    points = curve_points(frame_of({"jwt-x": BENDING}), ME)
    table = knee_table(points, (10.0, 1000.0))
    row = table.iloc[0]
    assert (row["config"], row["rates"], row["knee_rps"]) == ("jwt-x", 6, 500)
    assert row["max_rps_p99_under_10ms"] == 400
    assert row["max_rps_p99_under_1000ms"] == 400  # 500 achieved only 450: it fell short
    lines = curve_lines(points, (10.0,))
    assert "| jwt-x | 6 | 500 | 400 |" in lines


def test_a_configuration_whose_generator_fell_short_says_where() -> None:
    frame = frame_of({"none-y": [(100, 1.0, 100), (200, 1.0, 200), (300, 1.1, 300),
                                 (400, 1.2, 400)]}, short={("none-y", 400)})
    assert generator_limits(frame, ME) == {"none-y": 400}
    lines, _ = curve_section(frame, ME, "caption")
    assert "| none-y | 3 | none below 400 (the generator fell short from there) |" in \
        "\n".join(lines)


def test_the_section_draws_configurations_with_three_rates_or_more() -> None:
    frame = frame_of({"jwt-x": BENDING, "none-y": [(100, 1.0, 100), (200, 1.0, 200)]})
    lines, charts = curve_section(frame, ME, "caption")
    assert lines[0] == "## Latency against offered load"
    assert any(line.startswith("| jwt-x |") for line in lines)
    assert not any(line.startswith("| none-y |") for line in lines)  # two rates: no curve
    ((name, _, figure),) = charts
    assert name == "latency-vs-offered-load" and isinstance(figure, Figure)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["jwt-x p99", "jwt-x p50"]
    assert figure.axes[0].get_yscale() == "log"


def test_no_section_without_open_model_cells() -> None:
    frame = frame_of({})
    assert curve_section(frame, ME, "caption") == ([], [])
    assert curve_section(frame.drop(columns=["rate_offered"]), ME, "c") == ([], [])
