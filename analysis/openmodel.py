"""Open-model cells (a `rate`): offered against achieved, the schedule's lag, and whether
the generator delivered the load at all.

A cell's percentiles say something about the target only when the generator sent what
was offered, on time. It did not when its own CPU ran out, when requests left late
although requests in flight were below their bound (the generator could not keep its
schedule), or when the bound on requests in flight was reached while the target was
mostly idle (too few users for the rate: the queue was in the generator). Such cells
get `is_generator_short` and a `generator_note`, and verdicts and curves leave them out,
as are windows whose requests left late while another program took the CPU.
Every rule but the first needs requests to have left late (schedule lag p99 over
LATE_MS): a moment with every user busy that the schedule absorbed is no shortfall.
A target that cannot keep up (achieved below offered while it is busy) is the knee, not
a short generator.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.costs import DISTURBED, Interval, hot_rows, median_of
from analysis.hdr import LAG, percentiles

GENERATOR_BUSY = 0.90  # share of its CPU above which the generator is the bottleneck
LATE_MS = 10.0  # schedule lag p99 that counts as "could not keep its schedule"
TARGET_IDLE = 0.50  # target CPU share below which a full in-flight bound is the generator's
OPEN_COUNTS = ("scheduled", "sent", "in_flight_limit", "in_flight_max")
# The numeric columns open_columns adds (NaN for a closed loop).
OPEN_COLUMNS = ("rate_offered", "rate_achieved", "rate_floor_capacity", "schedule_lag_p50_ms",
                "schedule_lag_p99_ms", "schedule_lag_max_ms", "arrivals_scheduled",
                "arrivals_sent", "in_flight_limit", "in_flight_max")


def sum_open_counts(blocks: list[dict[str, Any]]) -> dict[str, float] | None:
    """The "open" blocks of a cell's histogram files, added over its processes."""
    if not blocks:
        return None
    summed: dict[str, float] = {key: float(sum(b.get(key, 0) for b in blocks))
                                for key in OPEN_COUNTS}
    summed["rate"] = float(sum(b.get("rate", 0.0) for b in blocks))
    return summed


def generator_note(counts: dict[str, float], lag_p99_ms: float,
                   usage: dict[str, float]) -> str:
    """Why the generator did not deliver the offered load ("" when it did). usage: the
    window's generator_util, target_util and foreign_cpu_share (NaN when unknown)."""
    nan = float("nan")
    generator = usage.get("generator_util", nan)
    target = usage.get("target_util", nan)
    foreign = usage.get("foreign_cpu_share", nan)
    if not math.isnan(generator) and generator >= GENERATOR_BUSY:
        return f"the load generator used {generator:.0%} of its CPU"
    if lag_p99_ms <= LATE_MS:
        return ""  # requests left on time: whatever the latency, it is the target's
    late = f"requests left up to {lag_p99_ms:,.0f} ms late (p99)"
    if not math.isnan(foreign) and foreign > DISTURBED:
        return f"{late} while another program took {foreign:.0%} of the machine's CPU"
    if counts["in_flight_max"] < counts["in_flight_limit"]:
        return f"{late} with free users: the generator could not keep its schedule"
    if not math.isnan(target) and target < TARGET_IDLE:
        return (f"{late}, all {counts['in_flight_limit']:.0f} users busy, while the target "
                f"used {target:.0%} of its CPU: too few users for this rate")
    return ""


def open_columns(record: dict[str, Any], counts: dict[str, float] | None,
                 histograms: dict[str, HdrHistogram], requests: int, seconds: float,
                 usage: dict[str, float]) -> dict[str, Any]:
    """The cell-level columns of an open-model cell (NaN and False for a closed loop)."""
    nan = float("nan")
    rate = record.get("rate") or {}
    if counts is None or not rate:
        return {**dict.fromkeys(OPEN_COLUMNS, nan), "is_generator_short": False,
                "generator_note": ""}
    lag = percentiles(histograms.get(LAG))
    note = generator_note(counts, lag["p99_ms"], usage)
    floor = rate.get("floor_capacity")
    return {
        "rate_offered": float(rate.get("offered", counts["rate"])),
        "rate_achieved": requests / seconds if seconds > 0 else nan,
        "rate_floor_capacity": nan if floor is None else float(floor),
        "schedule_lag_p50_ms": lag["p50_ms"],
        "schedule_lag_p99_ms": lag["p99_ms"],
        "schedule_lag_max_ms": lag["max_ms"],
        "arrivals_scheduled": counts["scheduled"],
        "arrivals_sent": counts["sent"],
        "in_flight_limit": counts["in_flight_limit"],
        "in_flight_max": counts["in_flight_max"],
        "is_generator_short": bool(note),
        "generator_note": note,
    }


def equal_load_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and rate: latency at that offered load, over the repeats whose
    generator delivered it.

    Columns: config, mode, rate_spec, repeats (windows used), short (windows left out),
    notes (their generator notes), rate_offered, rate_achieved (medians), p50_ms and
    p99_ms with _low and _high (medians and ranges over repeats), service_p99_ms,
    schedule_lag_p99_ms.
    """
    hot = hot_rows(frame, is_open=True)
    if hot.empty or "rate_offered" not in hot:
        return pd.DataFrame()
    rows = []
    for (config, spec), group in hot.groupby(["config", "rate_spec"], sort=False):
        short = group[group["is_generator_short"].astype(bool)]
        kept = group.drop(short.index)
        p50, p99 = Interval.of(kept["p50_ms"]), Interval.of(kept["p99_ms"])
        rows.append({
            "config": config, "mode": group["mode"].iloc[0], "rate_spec": spec,
            "repeats": len(kept), "short": len(short),
            "notes": sorted(set(short["generator_note"])),
            "rate_offered": median_of(group, "rate_offered"),
            "rate_achieved": median_of(kept, "rate_achieved"),
            "p50_ms": p50.median, "p50_ms_low": p50.low, "p50_ms_high": p50.high,
            "p99_ms": p99.median, "p99_ms_low": p99.low, "p99_ms_high": p99.high,
            "service_p99_ms": median_of(kept, "service_p99_ms"),
            "schedule_lag_p99_ms": median_of(kept, "schedule_lag_p99_ms"),
        })
    return pd.DataFrame(rows)


def is_one_rate(equal_load: pd.DataFrame) -> bool:
    """True when every configuration was offered the same one rate (quick's fixed-rate
    pass): then latency at equal offered load leads the answer."""
    return not equal_load.empty and equal_load["rate_spec"].nunique() == 1


def generator_warnings(frame: pd.DataFrame) -> list[str]:
    """A line per open-model window whose generator did not deliver the offered load."""
    if "is_generator_short" not in frame:
        return []
    short = frame[frame["is_generator_short"].astype(bool)].drop_duplicates("cell")
    return [f"{row['cell']}: the load generator fell short of {row['rate_offered']:,.0f} "
            f"req/s ({row['generator_note']}); its percentiles are left out of the answer "
            "and the curves" for _, row in short.iterrows()]
