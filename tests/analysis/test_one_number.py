"""One number per fact, on a real run: a configuration costs the same in every table of its
report, and no chart orders configurations against the answer.

A small suite runs for real (`python -m authbench run FILE`: windows interleaved, two
repeats, a closed loop and a fixed rate of half the floor's capacity per configuration,
a blocklist so the report prices the revocation check), its report is rebuilt with
`authbench report RUN`, and report.md is read back as a reader would.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.cost.configs import config_table
from analysis.cost.table import answer_order, cost_table
from analysis.data.load import load_run
from analysis.latency.equal_load import equal_load_of
from analysis.report.plots import capacity_table, plot_throughput_by_config

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240

SLOW = pytest.mark.slow  # the real run: about 30 s on a quiet 2-core machine

SUITE = """name = "one-number"
description = "One number per fact: closed loop and a fixed rate per configuration."
repeats = 2
interleave = "windows"

[defaults]
scenario = "read"
users = 8
duration = 1
warmup = 0.2
alg = "HS256"
rate = ["", "50%"]

[[matrix]]
mode = ["none", "session", "jwt"]
store = "memory"

[[matrix]]
mode = "jwt"
store = "memory"
revocation = "blocklist"
"""
# Logins are not what this run measures: a cheap password KDF keeps it short.
FAST_LOGINS = {"KDF_N": "1024", "KDF_P": "1"}

Table = list[dict[str, str]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite run for real, its report rebuilt by the report command."""
    folder = tmp_path_factory.mktemp("one-number")
    suite = folder / "one-number.toml"
    suite.write_text(SUITE)
    env = {**os.environ, **FAST_LOGINS, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "authbench", "run", str(suite), "--results",
         str(folder / "results")], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = (folder / "results").iterdir()
    report = subprocess.run([sys.executable, "-m", "authbench", "report", str(path)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    return path


def tables(markdown: str) -> list[tuple[str, Table]]:
    """Every Markdown table with the heading it sits under: rows as {column: text}."""
    found: list[tuple[str, Table]] = []
    heading, block = "", []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if len(block) > 2:
            found.append((heading, [dict(zip(block[0], row, strict=True))
                                    for row in block[2:]]))
        block = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return found


def answer_costs(found: list[tuple[str, Table]]) -> dict[str, str]:
    """The answer's cost per configuration, as printed: '152.8 (148.4 to 157.2)'."""
    table = next(rows for heading, rows in found if heading == "The answer"
                 and "cost µs/request (closed loop)" in rows[0])
    return {row["configuration"]: row["cost µs/request (closed loop)"] for row in table}


def median(text: str) -> float:
    """The median of an interval's text: '1,234.5 (1,200.0 to 1,300.0)' -> 1234.5."""
    return float(text.split(" ")[0].replace(",", ""))


@SLOW
def test_a_configuration_costs_the_same_in_every_table(run: Path) -> None:
    found = tables((run / "report.md").read_text())
    answer = answer_costs(found)
    assert set(answer) == {"none-read-u8-n1", "session-memory-read-u8-n1",
                           "jwt-memory-HS256-read-u8-n1",
                           "jwt-memory-HS256-blocklist-read-u8-n1"}
    compared = 0
    for heading, rows in found:
        cost_columns = [c for c in rows[0] if c.startswith("cost µs/request")]
        for row in rows:
            key = row.get("configuration", "")
            for column in cost_columns:
                if key in answer:
                    assert row[column] == answer[key], (heading, key, column)
                    compared += 1
    # The answer itself, and the revocation check's table for every configuration but
    # the floor (nothing to revoke).
    assert compared >= len(answer) + 3
    check = next(rows for heading, rows in found if heading == "What the revocation check costs")
    assert {row["configuration"] for row in check} == set(answer) - {"none-read-u8-n1"}


@SLOW
def test_latency_at_equal_load_is_one_number_in_tables_and_charts(run: Path) -> None:
    """The answer's fixed-rate percentiles (equal_load_of) and the configurations' table
    the percentile chart draws (config_table) keep the same windows: the same numbers."""
    frame = load_run(run)
    equal = equal_load_of(run, frame).set_index("config")
    fixed = config_table(run, frame)
    fixed = fixed[fixed["window"] != "closed loop"].set_index("config")
    assert set(equal.index) == set(fixed.index) and len(equal) == 4
    for config, row in equal.iterrows():
        for column in ("p50_ms", "p90_ms", "p99_ms"):
            assert fixed.loc[config, column] == pytest.approx(row[column], nan_ok=True), \
                (config, column)  # NaN in both when every window was left out
        assert fixed.loc[config, "left_out"] == row["short"]
    found = tables((run / "report.md").read_text())
    answer = next(rows for _, rows in found
                  if rows and "p90 ms (fixed rate)" in rows[0])
    for row in answer:
        config = row["configuration"].split(" at ")[0]
        if row["p90 ms (fixed rate)"].startswith("-"):  # every window left out
            assert math.isnan(equal.loc[config, "p90_ms"])
            continue
        assert median(row["p90 ms (fixed rate)"]) == pytest.approx(
            equal.loc[config, "p90_ms"], abs=0.005)


@SLOW
def test_the_configurations_table_gives_the_same_cost_in_ms(run: Path) -> None:
    found = tables((run / "report.md").read_text())
    answer = answer_costs(found)
    configurations = next(rows for heading, rows in found if heading == "Configurations")
    cost = next(c for c in configurations[0] if "ms/req" in c)
    shown = 0
    for row in configurations:
        if row["configuration"] in answer:  # a closed loop's row: the answer's cost, in ms
            ms = float(row[cost])
            assert abs(ms * 1000 - median(answer[row["configuration"]])) <= 0.5
            shown += 1
        else:  # a fixed rate's windows: another measurement, not shown as the cost
            assert row[cost] == "-", row
    assert shown == len(answer)


@SLOW
def test_no_chart_or_line_orders_configurations_against_the_answer(run: Path) -> None:
    markdown = (run / "report.md").read_text()
    found = tables(markdown)
    order = list(answer_costs(found))  # the answer table's rows, top to bottom
    assert [median(cost) for cost in answer_costs(found).values()] == \
        sorted(median(cost) for cost in answer_costs(found).values())
    # The capacity chart draws what capacity_table gives, top to bottom.
    drawn = capacity_table(cost_table(load_run(run)))
    assert list(drawn["key"]) == order
    assert list(drawn["capacity"]) == sorted(drawn["capacity"], reverse=True)
    (line,) = [line for line in markdown.splitlines() if line.startswith("Cheapest to dearest")]
    assert re.split(r" [<≈] ", line.split(": ", 1)[1]) == order  # one group: no name
    configurations = next(rows for heading, rows in found if heading == "Configurations")
    closed = [row["configuration"] for row in configurations if row["configuration"] in order]
    assert closed == order


def window(key: str, repeat: int, cost: float, rps: float, *, label: str = "load generator",
           users: int = 20, rate_spec: str = "") -> dict[str, object]:
    """One window's GET /api/me row, as analysis.data.load.load_run gives it."""
    return {"cell": f"{key}-{rate_spec}-r{repeat}", "key": f"{key}{'-at' if rate_spec else ''}",
            "config": key, "repeat": repeat, "status": "ok", "endpoint": "GET /api/me",
            "mode": key.split("-")[0], "store": "memory", "alg": "HS256", "lib": "pyjwt",
            "revocation": "none", "scenario": "read", "users": users, "nodes": 1, "scale": 0,
            "server_cpu_us": cost, "target_cpu_us": cost, "store_cpu_us": math.nan,
            "rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "bottleneck": label,
            "rate_spec": rate_spec}


def test_the_capacity_chart_follows_cost_not_a_generator_bound_req_s() -> None:
    # quick's case: the generator bounded the closed loop, and JWT's req/s came out above
    # the session's although it costs more per request. Fixed-rate windows cost more still.
    frame = pd.DataFrame([
        *(window("session-u20", r, cost, rps) for r, cost, rps in
          ((1, 120.0, 3400.0), (2, 124.0, 3500.0))),
        *(window("jwt-u20", r, cost, rps) for r, cost, rps in
          ((1, 160.0, 6800.0), (2, 166.0, 6500.0))),
        *(window("none-u20", r, cost, rps) for r, cost, rps in
          ((1, 90.0, 3000.0), (2, 92.0, 3100.0))),
        *(window("session-u20", r, 400.0, 1000.0, rate_spec="50%") for r in (1, 2)),
        *(window("jwt-u20", r, 420.0, 1000.0, rate_spec="50%") for r in (1, 2)),
        *(window("none-u5", r, 95.0, 900.0, users=5) for r in (1, 2)),
    ])
    costs = cost_table(frame)
    drawn = capacity_table(costs)
    # Group by group (fewer users first), cheapest first within each.
    assert list(drawn["key"]) == answer_order(costs) == ["none-u5", "none-u20", "session-u20",
                                                         "jwt-u20"]
    jwt = drawn.set_index("key").loc["jwt-u20"]
    assert jwt["capacity"] == pytest.approx(1e6 / 163.0)  # 10^6 / the median cost
    assert (jwt["low"], jwt["high"]) == (pytest.approx(1e6 / 166.0), pytest.approx(1e6 / 160.0))
    assert list(drawn["group"].unique()) == ["read scenario, 5 users, 1 node",
                                             "read scenario, 20 users, 1 node"]
    figure = plot_throughput_by_config(frame, "caption")
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels == list(drawn["key"])  # bar i is row i, the top one the cheapest
