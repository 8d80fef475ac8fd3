"""The store across a network: latency against round trip, on frames of known answer."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.data.endpoints import ME
from analysis.store.distance import (
    break_even_rtt,
    family_of,
    rtt_effects,
    rtt_sentences,
    rtt_table,
    store_rtt_section,
    with_store_rtt,
)
from analysis.verdict.table import NOT_MEASURED, Verdict

RTTS = (0.0, 0.5, 1.0, 2.0)


def window(mode: str, revocation: str, rtt: float, repeat: int, p50: float,
           calls: float) -> dict[str, object]:
    config = f"{mode}-redis-HS256-{revocation}-read-u20-n1" + (f"-rtt{rtt:g}ms" if rtt else "")
    return {"status": "ok", "endpoint": ME, "rate_offered": 1500.0, "rate_spec": "15%",
            "is_generator_short": False, "config": config, "mode": mode, "store": "redis",
            "revocation": revocation, "alg": "HS256", "store_rtt_ms": rtt, "repeat": repeat,
            "p50_ms": p50, "p99_ms": 3 * p50, "server_cpu_us": 150.0 + repeat,
            "proxy_cpu_us": 20.0 if rtt else math.nan, "store_ops_per_request": calls}


def frame() -> pd.DataFrame:
    """Sessions wait for one lookup (p50 = 0.6 + RTT ms), the JWT control for none
    (p50 = 0.9 ms flat); repeats 0.02 ms apart."""
    rows = []
    for repeat in (1, 2, 3):
        jitter = 0.02 * (repeat - 2)
        for rtt in RTTS:
            rows.append(window("session", "none", rtt, repeat, 0.6 + rtt + jitter, 1.0))
            rows.append(window("jwt", "none", rtt, repeat, 0.9 + jitter, 0.0))
    rows.append({**window("session", "none", 1.0, 4, 50.0, 1.0), "is_generator_short": True})
    return pd.DataFrame(rows)


def test_a_family_is_the_configuration_without_its_round_trip() -> None:
    assert family_of("session-redis-read-u20-n1-rtt0.25ms") == "session-redis-read-u20-n1"
    assert family_of("session-redis-read-u20-n1") == "session-redis-read-u20-n1"


def test_the_table_has_each_family_at_each_round_trip_with_its_range() -> None:
    table = rtt_table(frame())
    assert len(table) == 2 * len(RTTS)
    one = table[(table["mode"] == "session") & (table["rtt_ms"] == 1.0)].iloc[0]
    # the generator-short window (p50 50 ms) is left out
    assert (one["p50"].median, one["p50"].low, one["p50"].high, one["p50"].n) == pytest.approx(
        (1.6, 1.58, 1.62, 3))
    assert one["label"] == "session (redis)"
    assert one["proxy"].median == 20.0


def test_each_round_trip_adds_itself_to_a_session_and_nothing_to_the_control() -> None:
    effects = {e.label: e for e in rtt_effects(rtt_table(frame()))}
    session, control = effects["session (redis)"], effects["JWT HS256 (no revocation)"]
    assert session.slope == pytest.approx(1.0)
    assert session.intercept_ms == pytest.approx(0.6)
    assert session.added_ms[2.0].median == pytest.approx(2.0)
    assert (session.added_ms[2.0].low, session.added_ms[2.0].high) == pytest.approx((1.96, 2.04))
    assert not session.is_flat and control.is_flat
    assert control.slope == pytest.approx(0.0, abs=1e-9)


def test_the_break_even_round_trip_is_where_the_measured_line_crosses_the_control() -> None:
    points = [(0.0, 0.6), (0.5, 1.1), (1.0, 1.6), (2.0, 2.6)]
    assert break_even_rtt(points, 0.9) == pytest.approx(0.3)
    assert break_even_rtt(points, 0.5) == 0.0  # above the control already on loopback
    assert break_even_rtt(points, 3.0) is None  # never within the RTTs measured
    # one noisy dip back under the control: only from the last crossing on
    assert break_even_rtt([(0.0, 0.6), (0.5, 1.0), (1.0, 0.8), (2.0, 2.8)], 0.9) == \
        pytest.approx(1.05)


def test_the_sentences_carry_the_figures() -> None:
    said = rtt_sentences(rtt_table(frame()))
    assert any(s.startswith("session (redis): p50 +0.50 (0.46 to 0.54) ms at 0.5 ms")
               and "slope 1.00 ms per ms" in s and "1.00 store calls per request" in s
               for s in said)
    assert any("session (redis) lookup costs more latency than verifying a JWT HS256 "
               "(0.90 (0.90 to 0.90) ms p50) from about 0.30 ms (interpolated); their ranges "
               "part from 0.5 ms" in s for s in said)


def test_a_brief_sentence_gives_the_largest_round_trip_and_the_slope() -> None:
    said = rtt_sentences(rtt_table(frame()), is_brief=True)
    assert "session (redis): p50 +2.00 (1.96 to 2.04) ms at 2 ms (slope 1.00 ms per ms of " \
           "round trip)" in said


def test_no_round_trip_in_the_run_no_section_and_the_row_unchanged() -> None:
    direct = frame().assign(store_rtt_ms=0.0)
    assert store_rtt_section(direct, "caption") == ([], [])
    row = Verdict("Performance", "claim", "measured", "holds")
    assert with_store_rtt(row, direct) == row


def test_the_performance_row_gains_the_round_trip_and_a_verdict_when_it_had_none() -> None:
    row = with_store_rtt(Verdict("Performance", "claim", "x", NOT_MEASURED), frame())
    assert row.verdict.startswith("depends on the store's distance")
    assert "JWT HS256 (no revocation) stayed flat" in row.verdict
    assert row.measured.startswith("Store round trip, at equal offered load (the largest ")
    assert "; session (redis): p50 +2.00 (1.96 to 2.04) ms at 2 ms (slope 1.00" in row.measured
    kept = with_store_rtt(Verdict("Performance", "claim", "CPU figures.", "holds"), frame())
    assert kept.verdict == "holds" and kept.measured.startswith("CPU figures. Store round trip")


def test_the_section_has_a_row_per_family_and_round_trip_and_a_chart() -> None:
    lines, charts = store_rtt_section(frame(), "caption")
    assert lines[0] == "## The store across a network"
    rows = [line for line in lines if line.startswith("| session (redis) |")]
    assert rows[2] == ("| session (redis) | 1 | 1,500 | 1.60 (1.58 to 1.62) | "
                       "4.80 (4.74 to 4.86) | 152.0 (151.0 to 153.0) | 20.0 (20.0 to 20.0) | "
                       "1.00 (1.00 to 1.00) |")
    [(name, _title, figure)] = charts
    assert name == "store-rtt" and isinstance(figure, Figure)
    assert [len(ax.lines) for ax in figure.axes[:3]] != [0, 0, 0]


def test_a_fall_is_signed_once() -> None:
    rows = frame()
    rows.loc[(rows["mode"] == "jwt") & (rows["store_rtt_ms"] == 2.0), "p50_ms"] -= 0.1
    said = rtt_sentences(rtt_table(rows))
    assert any("-0.10 (-0.14 to -0.06) ms at 2 ms" in s for s in said), said
    assert not any("+-" in s for s in said)
