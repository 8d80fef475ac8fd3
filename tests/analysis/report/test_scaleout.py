"""The scale-out model on a run: inputs from the frame and store-ceiling.json, the report
section, the Scalability row. Frames and the ceiling file are of known figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.data.endpoints import ME
from analysis.report.scaleout import is_relevant, scaleout_section, with_scaleout
from analysis.store.scaleout_data import predictions, scaleout_inputs, term_checks
from analysis.verdict.table import NOT_MEASURED, Verdict

CEILING = Path(__file__).resolve().parents[2] / "fixtures" / "store-ceiling" / \
    "store-ceiling.json"  # redis: session-get 100,000 ops/s, revocation-check 80,000


def window(mode: str, store: str, revocation: str, repeat: int, cpu_us: float, ops: float,
           store_cpu_us: float = float("nan"), nodes: int = 1, rps: float = 5_000.0,
           bottleneck: str = "target") -> dict[str, object]:
    key = f"{mode}-{store}-{revocation}-read-u20-n{nodes}"
    return {"status": "ok", "endpoint": ME, "cell": f"{key}-r{repeat}", "key": key,
            "config": key, "repeat": repeat, "rate_spec": "", "mode": mode, "store": store,
            "revocation": revocation, "alg": "HS256", "nodes": nodes, "store_rtt_ms": 0.0,
            "target_cpu_us": cpu_us, "store_ops_per_request": ops,
            "store_cpu_us": store_cpu_us, "rps": rps, "bottleneck": bottleneck,
            "is_oversubscribed": nodes > 1}


def frame() -> pd.DataFrame:
    """Sessions in Redis cost the node 200 µs and one GET (20 µs of Redis CPU); JWT 250 µs
    and no store call (0.001: the heartbeat); sessions in memory never scale out."""
    rows = []
    for repeat, jitter in ((1, -10.0), (2, 0.0), (3, 10.0)):
        rows.append(window("session", "redis", "none", repeat, 200 + jitter, 1.0, 20.0,
                           bottleneck="load generator"))
        rows.append(window("jwt", "memory", "none", repeat, 250 + jitter, 0.001,
                           rps=3_600.0))
        rows.append(window("session", "memory", "none", repeat, 120.0, float("nan")))
    return pd.DataFrame(rows)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    shutil.copy(CEILING, tmp_path / "store-ceiling.json")
    return tmp_path


def test_the_inputs_take_cost_store_calls_and_the_ceiling_per_configuration(run: Path) -> None:
    inputs = scaleout_inputs(frame(), run)
    modes = {m.label: m for m in inputs.modes}
    assert set(modes) == {"session (redis)", "JWT HS256 (no revocation)"}  # memory: left out
    session = modes["session (redis)"]
    assert (session.node_cpu_us, session.node_cpu_us_range) == (200.0, (190.0, 210.0))
    assert session.store_ops_per_request == 1.0
    assert modes["JWT HS256 (no revocation)"].store_ops_per_request == 0.0  # heartbeat only
    ceiling = inputs.stores[session.key]
    assert (ceiling.kind, ceiling.cpu_us_per_op_at_load) == ("redis", 20.0)
    assert ceiling.ops_per_s == pytest.approx(100_000.0)
    assert inputs.target_bound_rps == {"jwt-memory-none-read-u20-n1": 3_600.0}


def test_one_redis_caps_sessions_where_the_arithmetic_says(run: Path) -> None:
    by_label = {p.mode.label: p for p in predictions(scaleout_inputs(frame(), run))}
    session = by_label["session (redis)"]
    # a node: 10^6 / 200 µs = 5,000 req/s; the store: 100,000 GETs/s at 1 per request
    assert session.node_rps == 5_000.0 and session.store_rps == pytest.approx(100_000.0)
    assert session.cap_nodes == 20 and session.cap_nodes_range == (19, 21)
    assert by_label["JWT HS256 (no revocation)"].cap_nodes is None


def test_each_term_is_checked_against_its_own_measurement(run: Path) -> None:
    checks = {c.key: c for c in term_checks(scaleout_inputs(frame(), run))}
    node = checks["jwt-memory-none-read-u20-n1"]
    assert (node.model_rps, node.measured_rps) == (4_000.0, 3_600.0)
    saturation = checks["session (redis), CPU per operation at saturation"]
    assert saturation.model_rps == pytest.approx(1e6 / 9.5)  # the fixture's 9.5 µs per GET
    at_load = checks["session (redis), CPU per operation at the cells' load"]
    assert (at_load.model_rps, at_load.measured_rps) == pytest.approx((50_000.0, 100_000.0))
    assert at_load.relative_difference == pytest.approx(-0.5)


def test_without_the_ceiling_shared_store_configurations_are_left_out(tmp_path: Path) -> None:
    inputs = scaleout_inputs(frame(), tmp_path)
    assert inputs.ceiling is None
    assert [p.mode.label for p in predictions(inputs)] == ["JWT HS256 (no revocation)"]
    lines, _ = scaleout_section(frame(), tmp_path, "caption")
    assert any("The store's ceiling was not measured in this run" in line for line in lines)


def test_the_section_tabulates_the_bound_and_draws_it(run: Path) -> None:
    lines, charts = scaleout_section(frame(), run, "caption")
    assert lines[0] == "## Scaling out: many nodes sharing one store"
    [row] = [line for line in lines if line.startswith("| session (redis) |")]
    assert row == ("| session (redis) | 5,000 | 1.00 | 20 nodes | 5,000 | 10,000 | 20,000 | "
                   "40,000 | 80,000 | 100,000 | 100,000 | 100,000 |")
    assert [name for name, _, _ in charts] == ["scaleout"]


def test_the_scalability_row_is_predicted_when_no_nodes_were_measured(run: Path) -> None:
    row = with_scaleout(Verdict("Scalability", "claim", "no cell", NOT_MEASURED), frame(), run)
    assert row.verdict.startswith("holds, predicted: a shared store caps sessions (one Redis "
                                  "caps session (redis) at about 20 nodes (100,000 req/s))")
    assert row.verdict.endswith("not measured over nodes in this run")
    assert "JWT HS256 (no revocation) read no store per request" in row.measured
    assert row.measured.startswith("Predicted (the scale-out model, not measured) from one "
                                   "node's CPU per request")


def test_a_measured_row_keeps_its_verdict_and_adds_the_prediction_labelled(run: Path) -> None:
    measured = Verdict("Scalability", "claim", "Measured: JWT: 0.0 % failed on 2 nodes",
                       "holds for what ran: no multi-node configuration failed")
    two_nodes = pd.concat([frame(), pd.DataFrame([window("jwt", "memory", "none", 1, 250.0,
                                                         0.001, nodes=2)])])
    row = with_scaleout(measured, two_nodes, run)
    assert row.verdict.startswith("holds for what ran: no multi-node configuration failed "
                                  "(measured on up to 2 nodes); predicted beyond them: one "
                                  "Redis caps session (redis) at about")
    assert row.measured.startswith("Measured: JWT: 0.0 % failed on 2 nodes. Predicted (the "
                                   "scale-out model, not measured)")


def test_a_run_without_a_shared_store_or_nodes_keeps_its_row(run: Path) -> None:
    memory = frame()[lambda f: f["store"] == "memory"]
    assert not is_relevant(memory)
    row = Verdict("Scalability", "claim", "no cell", NOT_MEASURED)
    assert with_scaleout(row, memory, run) == row
    assert scaleout_section(memory, run, "caption") == ([], [])


def test_postgres_calls_come_from_the_ceiling_files_hot_path(run: Path) -> None:
    rows = pd.DataFrame([window("session", "postgres", "none", repeat, 300.0, float("nan"),
                                 60.0) for repeat in (1, 2, 3)])
    inputs = scaleout_inputs(rows, run)
    [mode] = inputs.modes
    assert mode.store_ops_per_request == 1.0  # one SELECT, as the file declares
    store = inputs.stores[mode.key]
    assert store.ops_per_s == pytest.approx(20_000.0) and store.cpu_us_per_op_at_load == 60.0
    [prediction] = predictions(inputs)
    assert prediction.cap_nodes == 6  # 6 x (10^6 / 300 µs) = 20,000: the store binds at 6


def test_without_counts_or_a_ceiling_a_shared_store_is_left_out(tmp_path: Path) -> None:
    rows = pd.DataFrame([window("session", "postgres", "none", 1, 300.0, float("nan"))])
    assert scaleout_inputs(rows, tmp_path).modes == []
