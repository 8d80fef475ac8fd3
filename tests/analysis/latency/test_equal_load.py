"""Open-model columns: offered against achieved, lag, and when the generator fell short."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from analysis.cost.recommend import format_recommendation, recommend
from analysis.cost.table import cost_table
from analysis.data.endpoints import ME
from analysis.data.hdr import LAG, merge
from analysis.latency.equal_load import (
    DISTURBED_NOTE,
    equal_load_table,
    generator_note,
    generator_warnings,
    merged_percentile,
    open_columns,
    sum_open_counts,
)
from analysis.report.answer import latency_lines
from analysis.report.summary import format_answer, rate_basis

COUNTS = {"scheduled": 1000.0, "sent": 1000.0, "in_flight_limit": 20.0, "in_flight_max": 5.0,
          "rate": 500.0}


def test_counts_add_over_processes() -> None:
    blocks = [{"rate": 250, "scheduled": 500, "sent": 490, "in_flight_limit": 10,
               "in_flight_max": 4}] * 2
    assert sum_open_counts(blocks) == {"scheduled": 1000, "sent": 980, "in_flight_limit": 20,
                                       "in_flight_max": 8, "rate": 500}
    assert sum_open_counts([]) is None


@pytest.mark.parametrize(("counts", "lag_p99", "generator", "target", "fragment"), [
    (COUNTS, 0.5, 0.4, 0.6, ""),  # delivered on time with CPU to spare
    (COUNTS, 0.5, 0.95, 0.6, "used 95% of its CPU"),
    (COUNTS, 40.0, 0.5, 0.6, "40 ms late (p99) with free users"),
    ({**COUNTS, "in_flight_max": 20.0}, 40.0, 0.5, 0.2, "all 20 users busy"),
    # Every user busy for a moment, but requests still left on time: no shortfall.
    ({**COUNTS, "in_flight_max": 20.0}, 2.0, 0.5, 0.2, ""),
    # Every user busy and late, with the target busy too: the target's knee, not short.
    ({**COUNTS, "in_flight_max": 20.0}, 40.0, 0.5, 0.97, ""),
    (COUNTS, 0.5, math.nan, math.nan, ""),  # no CPU figures: judged on the schedule alone
])
def test_the_generator_falls_short_for_a_named_reason(
    counts: dict[str, float], lag_p99: float, generator: float, target: float, fragment: str
) -> None:
    note = generator_note(counts, lag_p99, {"generator_util": generator,
                                            "target_util": target, "foreign_cpu_share": 0.02})
    assert (fragment in note) if fragment else note == ""


def test_late_while_another_program_took_the_cpu_is_a_disturbed_window() -> None:
    busy = {**COUNTS, "in_flight_max": 20.0}
    usage = {"generator_util": 0.5, "target_util": 0.9, "foreign_cpu_share": 0.35}
    assert "another program took 35% of the machine's CPU" in generator_note(busy, 40.0, usage)
    assert generator_note(busy, 2.0, usage) == ""  # on time: the target's latency still holds


def test_open_columns_of_an_open_and_a_closed_cell() -> None:
    lag = HdrHistogram(1, 60_000_000, 3)
    for value in (100, 200, 3_000):
        lag.record_value(value)
    record = {"rate": {"spec": "50%", "offered": 500.0, "floor_capacity": 1000.0}}
    got = open_columns(record, COUNTS, {LAG: lag}, requests=990, seconds=2.0,
                       usage={"generator_util": 0.3, "target_util": 0.5})
    assert got["rate_offered"] == 500 and got["rate_achieved"] == 495
    assert got["rate_floor_capacity"] == 1000 and got["arrivals_sent"] == 1000
    assert got["schedule_lag_max_ms"] == pytest.approx(3, rel=0.01)
    assert got["is_generator_short"] is False and got["generator_note"] == ""
    closed = open_columns({}, None, {}, 990, 2.0, {})
    assert math.isnan(closed["rate_offered"]) and closed["is_generator_short"] is False


def rows(config: str, mode: str, server_us: float, rate: float, p99s: list[float],
         short: list[bool] | None = None) -> list[dict[str, object]]:
    out = []
    for repeat, p99 in enumerate(p99s, 1):
        is_short = bool(short and short[repeat - 1])
        base = {"config": config, "key": config, "mode": mode, "store": "memory", "alg": "HS256",
                "lib": "pyjwt", "revocation": "none", "scenario": "read", "users": 20,
                "nodes": 1, "scale": 0, "status": "ok", "endpoint": ME, "repeat": repeat,
                "error_rate": 0.0, "server_cpu_us": server_us, "target_cpu_us": server_us,
                "store_cpu_us": math.nan, "bottleneck": "target", "rps": 1e6 / server_us,
                "p50_ms": 1.0, "p99_ms": 3.0, "foreign_cpu_share": 0.01}
        out.append({**base, "cell": f"{config}-r{repeat}", "rate_spec": "",
                    "rate_offered": math.nan, "is_generator_short": False})
        out.append({**base, "cell": f"{config}-at50pct-r{repeat}", "key": f"{config}-at50pct",
                    "rate_spec": "50%", "rate_offered": rate, "rate_achieved": rate,
                    "p50_ms": p99 / 3, "p90_ms": p99 / 2, "p99_ms": p99,
                    "is_generator_short": is_short,
                    "generator_note": "the load generator used 95% of its CPU"
                    if is_short else "", "service_p99_ms": p99 / 2,
                    "schedule_lag_p99_ms": 0.5})
    return out


def test_equal_load_latency_leaves_out_short_windows_and_leads_the_answer() -> None:
    frame = pd.DataFrame(rows("none-x", "none", 100, 1000, [1.0, 1.2, 1.1])
                         + rows("jwt-x", "jwt", 200, 1000, [2.0, 50.0, 2.2],
                                short=[False, True, False]))
    table = equal_load_table(frame)
    jwt = table[table["config"] == "jwt-x"].iloc[0]
    assert (jwt["repeats"], jwt["short"]) == (2, 1)
    assert jwt["p99_ms"] == pytest.approx(2.1) and jwt["p99_ms_high"] == pytest.approx(2.2)
    assert jwt["notes"] == ["the load generator used 95% of its CPU"]
    warnings = generator_warnings(frame)
    assert len(warnings) == 1 and warnings[0].startswith("jwt-x-at50pct-r2")
    lines = latency_lines(cost_table(frame), table)
    assert lines[0].startswith("Latency at equal offered load")
    body = [line for line in lines if line.startswith("| none-x at") or
            line.startswith("| jwt-x at")]
    assert body[0].startswith("| none-x at 50% | 1,000 | 1,000 | 0.37")  # cheapest first
    assert "| 2 (1) |" in body[1]  # two windows used, one left out
    assert "Left out: the load generator used 95% of its CPU." in lines
    assert ("Each configuration's percentiles: median over its windows; in brackets their "
            "range.") in lines


def test_recommend_reads_capacity_off_a_curve() -> None:
    curve = []
    for rate, p99 in ((500, 2.0), (1000, 2.5), (1500, 4.0), (2000, 80.0)):
        for cell in rows("jwt-x", "jwt", 200, rate, [p99, p99]):
            if cell["rate_spec"]:
                cell = {**cell, "cell": f"jwt-x-at{rate}-r{cell['repeat']}",
                        "rate_spec": str(rate)}
            curve.append(cell)
    frame = pd.DataFrame(curve).drop_duplicates("cell")
    (candidate,) = recommend(frame, p99_ms=5, rps=1200)
    assert candidate.is_from_curve and candidate.is_meeting
    assert candidate.rps == 1500 and candidate.headroom == pytest.approx(1500 / 1200)
    (missing,) = recommend(frame, p99_ms=5, rps=1800)
    assert missing.reasons == ("its curve keeps p99 under 5 ms up to 1,500 req/s, under 1,800",)
    lines = format_recommendation([candidate], 5, 1200)
    assert any("(from its curve)" in line for line in lines)
    # Where the generator fell short before the target bent, the run cannot say.
    short = frame.assign(is_generator_short=frame["rate_spec"] == "2000")
    (unknown,) = recommend(short, p99_ms=5, rps=1800)
    assert unknown.reasons[0].startswith("unknown: its curve kept p99 under 5 ms up to 1,500")
    assert "fell short from 2,000" in unknown.reasons[0]
    # Curves alone (no closed-loop window): ranked by the rate they sustain, no cost.
    (alone,) = recommend(frame[frame["rate_spec"] != ""], p99_ms=5, rps=1200)
    assert alone.is_meeting and math.isnan(alone.cost_us) and alone.rps == 1500


def test_the_terminal_answer_takes_p90_at_equal_load_with_its_interval() -> None:
    frame = pd.DataFrame(rows("none-x", "none", 100, 1000, [1.0, 1.2, 1.1])
                         + rows("jwt-x", "jwt", 200, 1000, [2.0, 2.4, 2.2]))
    lines = format_answer(frame)
    assert "p90 ms (95% interval)" in lines[0]
    jwt = next(line for line in lines if line.startswith("jwt-x"))
    # the open-model windows' p90s (1.0, 1.2, 1.1): median and range, not the closed loop
    assert "1.10 (1.00 to 1.20)" in jwt and jwt.split()[-1] == "target"
    assert any("50 % of the floor's capacity: 1,000 req/s offered to every configuration"
               in line for line in lines)
    closed_only = format_answer(frame[frame["rate_spec"] == ""])
    assert "p99 ms  limited by" in closed_only[0]
    assert next(line for line in closed_only if line.startswith("jwt-x")).split()[-2] == "3.0"


def test_a_share_of_the_dearest_is_named_with_the_dearest() -> None:
    metadata = {"dearest": {"key": "jwt-redis", "rps": 2480.4}}
    assert rate_basis("40%dearest", 992.2, metadata) == (
        "40 % of the dearest configuration's capacity (jwt-redis, 2,480 req/s on one core): "
        "992 req/s offered")
    assert rate_basis("40%dearest", 992.2) == (
        "40 % of the dearest configuration's capacity: 992 req/s offered")
    assert rate_basis("500", 500.0) == "500 req/s offered"


def test_latency_leads_the_answer_only_at_one_rate_for_every_configuration() -> None:
    frame = pd.DataFrame(rows("none-x", "none", 100, 1000, [1.0, 1.2])
                         + rows("jwt-x", "jwt", 200, 1000, [2.0, 2.4]))
    second = frame[frame["rate_spec"] == "50%"].assign(
        rate_spec="80%", cell=lambda f: f["cell"].str.replace("at50pct", "at80pct"))
    two_rates = pd.concat([frame, second])
    assert latency_lines(cost_table(two_rates), equal_load_table(two_rates))[0].startswith(
        "Latency and throughput at this run's load (closed loop")
    assert "p99 ms  limited by" in format_answer(two_rates)[0]


def test_the_terminal_answer_keeps_long_names_whole() -> None:
    long_a = "jwt-redis-HS256-blocklist-faults-u20-n2-redis-restart"
    long_b = "jwt-redis-HS256-blocklist-faults-u20-n2-redis-restart-empty"
    frame = pd.DataFrame(rows(long_a, "jwt", 100, 1000, [1.0, 1.2])
                         + rows(long_b, "jwt", 200, 1000, [2.0, 2.4]))
    lines = format_answer(frame)
    assert any(line.startswith(long_a + " ") for line in lines)
    assert any(line.startswith(long_b + " ") for line in lines)
    column = lines[0].index("limited by")  # every row's bottleneck under its heading
    assert [line[column:] for line in lines[1:3]] == ["target", "target"]


def window(values_us: list[int]) -> HdrHistogram:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value in values_us:
        histogram.record_value(value)
    return histogram


def test_a_merged_percentile_is_hdrs_own_over_every_window() -> None:
    windows = [window(list(range(1000, 3000, 7))), window(list(range(500, 9000, 13))),
               window([40_000] * 30 + [1200] * 400)]
    merged = merge(windows)
    assert merged is not None
    for percentile in (50.0, 90.0, 99.0, 99.9):
        got = merged_percentile(windows, percentile)
        assert got.value == merged.get_value_at_percentile(percentile) / 1000
        assert got.low <= got.value <= got.high
    assert merged_percentile(windows, 99.0).requests == merged.get_total_count()


def test_the_interval_is_over_windows_seeded_and_as_wide_as_they_differ() -> None:
    alike = [window([1000] * 500 + [5000] * 10) for _ in range(4)]
    same = merged_percentile(alike, 99.0)
    assert (same.low, same.value, same.high) == pytest.approx((5.0, 5.0, 5.0), rel=1e-3)
    # One window of four paused: its requests waited 40 ms.
    paused = [*alike[:3], window([1000] * 460 + [40_000] * 50)]
    wide = merged_percentile(paused, 99.0)
    assert wide.low == pytest.approx(5.0, rel=1e-3) and wide.high == pytest.approx(40, rel=1e-3)
    assert merged_percentile(paused, 99.0) == wide  # a fixed seed: the same report twice
    one = merged_percentile(paused[:1], 99.0)
    assert one.windows == 1 and one.low == one.value == one.high
    assert math.isnan(merged_percentile([], 99.0).value)


def test_equal_load_latency_is_read_off_the_kept_windows_merged() -> None:
    frame = pd.DataFrame(rows("jwt-x", "jwt", 200, 1000, [2.0, 50.0, 2.2, 2.1],
                              short=[False, True, False, False]))
    cells = [c for c in frame["cell"] if "at50pct" in c]
    fast = [window([1000] * 990 + [3000] * 10), window([1000] * 985 + [4000] * 15),
            window([1000] * 980 + [2000] * 20)]
    histograms = dict(zip(cells, [fast[0], window([50_000] * 1000), *fast[1:]], strict=True))
    (jwt,) = equal_load_table(frame, histograms).to_dict("records")
    merged = merge(fast)  # the short window's 50 ms left out
    assert merged is not None
    assert jwt["p99_ms"] == merged.get_value_at_percentile(99) / 1000
    assert jwt["p90_ms"] == merged.get_value_at_percentile(90) / 1000
    assert jwt["p50_ms"] == pytest.approx(1.0, rel=1e-3)
    assert jwt["p90_ms_low"] <= jwt["p90_ms"] <= jwt["p90_ms_high"]
    assert jwt["p99_ms_low"] <= jwt["p99_ms"] <= jwt["p99_ms_high"] < 50
    assert jwt["latency_requests"] == 3000 and jwt["repeats"] == 3
    assert jwt["latency_basis"].startswith("of the 3 windows' histograms merged; in brackets a "
                                           "95% bootstrap interval")
    # Without every kept window's histogram: the median of the windows' own p99 and range.
    (median,) = equal_load_table(frame, dict(list(histograms.items())[:2])).to_dict("records")
    assert median["p99_ms"] == pytest.approx(2.1) and median["p99_ms_high"] == pytest.approx(2.2)
    assert median["latency_basis"] == "median over the 3 windows; in brackets their range"


def test_a_window_another_program_disturbed_is_left_out_of_equal_load_latency() -> None:
    frame = pd.DataFrame(rows("jwt-x", "jwt", 200, 1000, [2.0, 12.0, 2.2]))
    busy = frame["cell"] == "jwt-x-at50pct-r2"
    frame.loc[busy, "foreign_cpu_share"] = 0.35  # requests on time: not a short generator
    cells = list(frame.loc[frame["rate_spec"] == "50%", "cell"])
    histograms = {cells[0]: window([1000] * 970 + [2000] * 30),
                  cells[1]: window([1000] * 900 + [12_000] * 100),
                  cells[2]: window([1000] * 970 + [2200] * 30)}
    (jwt,) = equal_load_table(frame, histograms).to_dict("records")
    assert (jwt["repeats"], jwt["short"], jwt["disturbed"]) == (2, 1, 1)
    assert jwt["notes"] == [DISTURBED_NOTE] and "more than 15%" in DISTURBED_NOTE
    assert jwt["p99_ms"] == pytest.approx(2.2, rel=1e-3)  # 12 ms had it been kept
    assert generator_warnings(frame) == []  # the generator delivered: no such warning
    every = frame.assign(foreign_cpu_share=0.5)
    (none_left,) = equal_load_table(every, histograms).to_dict("records")
    assert none_left["repeats"] == 0 and math.isnan(none_left["p99_ms"])
