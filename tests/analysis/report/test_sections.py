"""The report's sections from the checked-in fixture run: the answer, the method."""

from __future__ import annotations

import pytest

from analysis.report.data import Report, build_report
from analysis.report.sections import answer_section, method_lines
from tests.analysis.fixtures import ROOT


@pytest.fixture(scope="module")
def tiny() -> Report:
    """The tiny run's report data, built once (loading histograms is the slow part)."""
    return build_report(ROOT / "tiny")


def test_answer_orders_configurations_by_cost(tiny: Report) -> None:
    lines = answer_section(tiny)
    # Costs rank only configurations of the same scenario, users and nodes: one line each.
    assert ("Cheapest to dearest, read scenario, 10 users, 1 node: none-read-u10-n1 < "
            "session-memory-read-u10-n1 < session-redis-read-u10-n1 < "
            "jwt-memory-HS256-read-u10-n1") in lines
    assert ("Cheapest to dearest, read scenario, 10 users, 2 nodes: session-memory-read-u10-n2 "
            "< jwt-memory-HS256-read-u10-n2") in lines
    assert any("one repeat per configuration, so no interval" in line for line in lines)
    assert ("| session-memory-read-u10-n1 | 4,000.0 | 4,000.0 | - | 0.62 | 250 | 4.0 | - "
            "| nothing saturated |") in lines
    # req/s where the target was the bottleneck; the rest say what limited them.
    assert ("| jwt-memory-HS256-read-u10-n2 | 10 | 3.00 | 3.00 | (160: not the target's "
            "capacity) | target's cores, shared |") in lines
    assert "| jwt-memory-HS256-read-u10-n1 | 10 | 3.00 | 3.00 | 80 | target |" in lines
    assert ("| none-read-u10-n1 | 10 | 0.50 | 0.99 | (100: not the target's capacity) "
            "| load generator |") in lines
    assert ("| session-memory-read-u10-n2 | 2 (more nodes than the targets' cores: they shared "
            "CPUs) | 3,000.0 | 50 (not target-bound) | 2.00 | 2.00 | target's cores, shared |") \
        in lines
    # Redis: target 1,500 + store 4,400 µs; the floor's 2,500 over 5,900; 10^6 / 5,900.
    assert ("| session-redis-read-u10-n1 | 5,900.0 | 1,500.0 | 4,400.0 | 0.42 | 169 | 6.0 | 45.5 "
            "| store |") in lines
    assert not any(line.startswith("**UNRELIABLE RUN") for line in lines)
    assert "### Algorithm choice" not in lines  # one algorithm
    at = lines.index("### Store choice")  # sessions in memory and in Redis, 1 node
    assert lines[at + 4:at + 7] == [
        "| session-memory-read-u10-n1 | memory | 4,000.0 | 4,000.0 | - | - | 2.00 "
        "| nothing saturated |",
        "| session-redis-read-u10-n1 | redis | 5,900.0 | 1,500.0 | 4,400.0 | 45.5 | 2.20 | store |",
        ""]


def test_method_names_the_machine_placement_and_warnings(tiny: Report) -> None:
    lines = method_lines(tiny)
    assert "- Machine: 2x Fixture CPU, 8.0 GiB, Linux" in lines
    assert ("- Runs: a fresh start per cell; targets pinned to CPUs [0], the load generator "
            "and the runner to [1]") in lines
    at = lines.index("### Warnings")
    assert any("006-hybrid" in line for line in lines[at:])
