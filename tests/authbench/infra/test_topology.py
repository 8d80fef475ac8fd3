"""Several target nodes behind a real HAProxy, or spread from the client side."""

from __future__ import annotations

import io
import resource
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest

from analysis.data.load import locust_row
from analysis.report.summary import summarize_run
from authbench.infra.haproxy import haproxy_path
from authbench.infra.topology import Topology, balancer_maxconn
from authbench.run.runner import RunOptions, run_suite
from authbench.run.suite import SERVICES, load_suite
from tests.conftest import IS_CI
from tests.support import read_json


@pytest.fixture
def haproxy() -> None:
    require_haproxy()


def require_haproxy() -> None:
    """HAProxy must be installed (skips on a user's machine without it; fails in CI)."""
    if haproxy_path() is None:
        message = "haproxy is not installed (Debian/Ubuntu: apt-get install haproxy)"
        if IS_CI:
            pytest.fail(f"CI needs {message}")
        pytest.skip(message)


TINY = "[defaults]\nusers = 4\nduration = 2\nwarmup = 1\nnodes = 2\n"
JWT_CELL = "001-jwt-memory-HS256-read-u4-n2-r1"
SESSION_CELL = "002-session-memory-read-u4-n2-r1"
STICKY_CELL = "003-session-memory-read-u4-n2-sticky-r1"


def health_pids(client: httpx.Client, url: str, times: int) -> Counter[int]:
    return Counter(client.get(f"{url}/health").json()["pid"] for _ in range(times))


def all_gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(pid) and psutil.Process(pid).status()
                   != psutil.STATUS_ZOMBIE for pid in pids)


@pytest.mark.usefixtures("haproxy")
def test_round_robin_reaches_every_node(tmp_path: Path) -> None:
    with Topology({"AUTH_MODE": "jwt"}, 2, tmp_path) as topology:
        assert topology.kind == "haproxy"
        assert topology.haproxy is not None
        pids = topology.describe()["node_pids"]
        assert len(set(pids)) == 2
        assert topology.entry_url not in topology.node_urls
        with httpx.Client(timeout=5) as client:  # one kept-alive connection
            seen = health_pids(client, topology.entry_url, 10)
        assert seen == Counter({pids[0]: 5, pids[1]: 5})
        assert f"maxconn {balancer_maxconn()}" in (tmp_path / "haproxy.cfg").read_text()
        assert topology.dead_nodes() == []
        balancer = topology.haproxy
        balancer.kill()
        balancer.wait(10)
        assert topology.dead_nodes() == [f"haproxy exited with code {balancer.returncode}"]
    assert all_gone(pids)


def test_maxconn_fits_under_the_descriptor_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    maxconn = balancer_maxconn()
    assert 64 <= maxconn <= 10_000
    if hard != resource.RLIM_INFINITY:
        assert 2 * maxconn + 100 < hard  # HAProxy needs ~2 descriptors a connection


@pytest.mark.slow  # HAProxy and two nodes
@pytest.mark.usefixtures("haproxy")
def test_sticky_balance_keeps_a_client_with_cookies_on_one_node(tmp_path: Path) -> None:
    with Topology({"AUTH_MODE": "jwt"}, 2, tmp_path, balance="sticky") as topology:
        pids = topology.describe()["node_pids"]
        with httpx.Client(timeout=5) as client:
            seen = health_pids(client, topology.entry_url, 10)
            assert client.cookies.get("AUTHBENCH_NODE") in ("node1", "node2")
        assert len(seen) == 1 and next(iter(seen)) in pids
        # Without the cookie every request is balanced again.
        fresh = Counter(httpx.get(f"{topology.entry_url}/health", timeout=5).json()["pid"]
                        for _ in range(6))
        assert set(fresh) == set(pids)
    assert all_gone(pids)


@pytest.mark.slow  # a real two-node run with Locust
def test_client_side_spreads_users_over_the_nodes(tmp_path: Path) -> None:
    suite = load_suite(str(_write(tmp_path, 'name = "spread"\n' + TINY
                                  + '[[matrix]]\nmode = "session"\n')), SERVICES)
    options = RunOptions(results=tmp_path / "results", use_haproxy=False, out=io.StringIO())
    run = run_suite(suite, options).path
    assert read_json(run / "metadata.json")["topology"]["load_balancer"] == "client-side"
    cell = read_json(run / "cells" / "001-session-memory-read-u4-n2-r1" / "cell.json")
    assert cell["status"] == "ok", cell["reason"]
    assert cell["topology"]["kind"] == "client-side"
    assert cell["topology"]["entry_url"] == cell["topology"]["node_urls"][0]
    assert not (run / "cells" / "001-session-memory-read-u4-n2-r1" / "haproxy.cfg").exists()
    # Both nodes served users: each burned real CPU, about as much as the other.
    cpu = [node["cpu_seconds"] for node in cell["nodes"]]
    assert len(cpu) == 2 and min(cpu) > 0.2 and min(cpu) > max(cpu) / 4, cpu
    # Each user stays on its node, so even per-node memory sessions never fail.
    total = locust_row(run / "cells" / cell["name"] / "locust_stats.csv", "Aggregated")
    assert total is not None and int(total["Request Count"]) > 100
    assert int(total["Failure Count"]) == 0


def _write(folder: Path, text: str) -> Path:
    path = folder / "suite.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def balanced_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_haproxy()
    """JWT, memory sessions, and sticky memory sessions, each on two nodes behind HAProxy."""
    folder = tmp_path_factory.mktemp("balanced")
    suite = load_suite(str(_write(folder, 'name = "balanced"\n' + TINY
                                  + '[[matrix]]\nmode = "jwt"\n'
                                  + '[[matrix]]\nmode = "session"\n'
                                  + '[[matrix]]\nmode = "session"\nbalance = "sticky"\n')),
                       SERVICES)
    return run_suite(suite, RunOptions(results=folder / "results", out=io.StringIO())).path


def failures(run: Path, cell: str) -> tuple[int, int]:
    total = locust_row(run / "cells" / cell / "locust_stats.csv", "Aggregated")
    assert total is not None
    return int(total["Request Count"]), int(total["Failure Count"])


@pytest.mark.slow  # a real two-node suite run
def test_jwt_on_two_nodes_shares_its_keys_and_never_fails(balanced_run: Path) -> None:
    cell = read_json(balanced_run / "cells" / JWT_CELL / "cell.json")
    assert cell["status"] == "ok", cell["reason"]
    assert cell["topology"]["kind"] == "haproxy" and cell["topology"]["nodes"] == 2
    assert [v["is_passed"] for v in cell["verify"]] == [True, True]
    keys = cell["target_env"]["JWT_KEYS_DIR"]
    assert Path(keys) == balanced_run / "keys" / "HS256" and list(Path(keys).iterdir())
    requests, failed = failures(balanced_run, JWT_CELL)
    assert requests > 100 and failed == 0
    assert all(node["cpu_seconds"] > 0 for node in cell["nodes"]) and len(cell["nodes"]) == 2
    [row] = [r for r in summarize_run(balanced_run) if r["cell"] == JWT_CELL]
    assert row["failures"] == 0 and row["rps"] > 0


@pytest.mark.slow  # a real two-node suite run
def test_memory_sessions_break_behind_round_robin(balanced_run: Path) -> None:
    """The nodes experiment's point: a session lives on the node that created it."""
    cell = read_json(balanced_run / "cells" / SESSION_CELL / "cell.json")
    assert cell["status"] == "ok", cell["reason"]  # measured: the failures are the result
    assert [v["is_passed"] for v in cell["verify"]] == [True, True]  # each node alone is fine
    requests, failed = failures(balanced_run, SESSION_CELL)
    assert failed > 0 and requests > failed
    me = locust_row(balanced_run / "cells" / SESSION_CELL / "locust_stats.csv", "/api/me")
    assert me is not None and int(me["Failure Count"]) > 0


@pytest.mark.slow  # a real two-node suite run
def test_sticky_balance_keeps_memory_sessions_working(balanced_run: Path) -> None:
    cell = read_json(balanced_run / "cells" / STICKY_CELL / "cell.json")
    assert cell["status"] == "ok", cell["reason"]
    assert cell["topology"]["balance"] == "sticky"
    assert "cookie AUTHBENCH_NODE" in (balanced_run / "cells" / STICKY_CELL
                                       / "haproxy.cfg").read_text()
    requests, failed = failures(balanced_run, STICKY_CELL)
    assert requests > 100 and failed == 0
    assert read_json(balanced_run / "metadata.json")["status"] == "complete"
