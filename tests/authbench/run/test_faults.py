"""Faults in a measured window: the suite key, the injector on real servers, one real cell.

Redis faults run against a redis-server of the test's own (the shared one is never
touched); PostgreSQL faults terminate only a connection the test opened itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import time
from pathlib import Path

import asyncpg
import pytest
import redis

from analysis.data.load import load_timelines
from analysis.report.writer import write_report
from analysis.verdict.availability import fault_table
from authbench.infra.launcher import TargetProcess
from authbench.run import faults
from authbench.run.cell import Cell
from authbench.run.faults import FaultInjector, application_name
from authbench.run.locustrun import Window
from authbench.run.runner import RunOptions, run_suite
from authbench.run.suite import SERVICES, SuiteError, load_suite, parse_suite
from tests.support import FAST_KDF, unique_namespace

BASE = 'name = "f"\n[defaults]\nscenario = "faults"\nnodes = 2\n'


def needs_redis_server() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")


def window_now(folder: Path, seconds: float = 30.0) -> Window:
    now = time.time()
    return Window(1, folder, now, now, now + seconds)


# --- the suite key -----------------------------------------------------------------------

def test_a_fault_is_part_of_the_cell_key_and_checked() -> None:
    suite = parse_suite(BASE + '[[matrix]]\nmode = "session"\nstore = "redis"\n'
                        'fault = ["none", "redis-restart-empty"]\n', "f.toml")
    assert [c.key for c in suite.cells] == ["session-redis-faults-u10-n2",
                                            "session-redis-faults-u10-n2-redis-restart-empty"]
    with pytest.raises(SuiteError, match='needs store = "redis"'):
        parse_suite(BASE + '[[matrix]]\nmode = "session"\nstore = "postgres"\n'
                    'fault = "redis-slow"\n', "f.toml")
    with pytest.raises(SuiteError, match='needs store = "postgres"'):
        parse_suite(BASE + '[[matrix]]\nmode = "session"\nstore = "redis"\n'
                    'fault = "postgres-terminate"\n', "f.toml")
    with pytest.raises(SuiteError, match="nodes >= 2"):
        parse_suite(BASE + '[[matrix]]\nmode = "jwt"\nnodes = 1\nfault = "node-kill"\n',
                    "f.toml")
    with pytest.raises(SuiteError, match="fault = 'explode'"):
        parse_suite(BASE + '[[matrix]]\nmode = "jwt"\nfault = "explode"\n', "f.toml")


def test_a_fault_needs_a_rig_of_its_own() -> None:
    text = ('name = "f"\ninterleave = "windows"\n[defaults]\nscenario = "read"\nnodes = 2\n'
            '[[matrix]]\nmode = "jwt"\nfault = "node-kill"\n')
    # A read cell with a fault cannot share a rig; the faults scenario gets one of its own.
    with pytest.raises(SuiteError, match=r'needs scenario = "faults" .* or interleave = "cells"'):
        parse_suite(text, "f.toml")


def test_the_shipped_faults_suite_covers_every_mode() -> None:
    suite = load_suite("faults", SERVICES)
    pairs = {(c.mode, c.store, c.revocation, c.fault) for c in suite.cells}
    for mode, store, kind in [("session", "redis", "none"), ("session", "postgres", "none"),
                              ("jwt", "redis", "none"), ("jwt", "redis", "blocklist"),
                              ("jwt", "redis", "pubsub"), ("hybrid", "redis", "blocklist")]:
        assert any(p[:3] == (mode, store, kind) for p in pairs), (mode, store, kind)
    assert {c.fault for c in suite.cells} == set(faults_kinds()) and suite.interleave == "cells"


def faults_kinds() -> tuple[str, ...]:
    from authbench.run.cell import FAULTS
    return tuple(f for f in FAULTS if f != "none")


# --- the injector on real servers --------------------------------------------------------

@pytest.mark.parametrize(("kind", "keeps_data"), [("redis-restart", True),
                                                  ("redis-restart-empty", False)])
def test_redis_goes_down_and_comes_back_with_or_without_its_data(
    tmp_path: Path, kind: str, keeps_data: bool
) -> None:
    needs_redis_server()
    injector = FaultInjector(Cell(mode="session", store="redis", nodes=2, fault=kind),
                             tmp_path, "redis://unused", "ns", at=0.2, seconds=0.5)
    try:
        injector.start()
        assert injector.store_url != "redis://unused"
        client = redis.Redis.from_url(injector.store_url, socket_timeout=2)
        client.set("kept", "1")
        record = injector.inject(window_now(tmp_path), [])
        assert injector.redis is not None and injector.redis.ping()  # back when it returns
        assert record["kind"] == kind and "error" not in record
        assert record["started"] <= record["down_at"] < record["ended"]
        assert record["ended"] - record["started"] >= 0.5
        assert (client.get("kept") == b"1") is keeps_data
        client.close()
    finally:
        injector.close()


def test_a_slow_redis_holds_every_command_past_the_store_timeout(tmp_path: Path) -> None:
    needs_redis_server()
    injector = FaultInjector(Cell(mode="jwt", store="redis", revocation="blocklist", nodes=2,
                                  fault="redis-slow"), tmp_path, "", "ns", at=0.0, seconds=1.5)
    try:
        injector.start()
        client = redis.Redis.from_url(injector.store_url, socket_timeout=0.5)
        result: dict[str, float] = {}

        def timed_ping() -> None:
            time.sleep(0.3)
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError):
                client.ping()
            result["waited"] = time.monotonic() - started

        import threading
        thread = threading.Thread(target=timed_ping)
        thread.start()
        record = injector.inject(window_now(tmp_path), [])
        thread.join(5)
        assert "error" not in record and record["ended"] - record["started"] >= 1.4
        assert result["waited"] >= 0.45
        client.close()
    finally:
        injector.close()


def test_postgres_terminate_ends_only_the_cells_own_backends(
    tmp_path: Path, postgres_url: str
) -> None:
    namespace = unique_namespace()

    async def scenario() -> tuple[bool, bool, int]:
        own = await asyncpg.connect(postgres_url,
                                    server_settings={"application_name":
                                                     application_name(namespace)})
        other = await asyncpg.connect(postgres_url)
        injector = FaultInjector(Cell(mode="session", store="postgres", nodes=2,
                                      fault="postgres-terminate"), tmp_path, postgres_url,
                                 namespace, at=0.0, seconds=0.6)
        record = await asyncio.to_thread(injector.inject, window_now(tmp_path), [])
        try:
            await own.fetchval("SELECT 1")
            own_alive = True
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            own_alive = False
        other_alive = await other.fetchval("SELECT 1") == 1
        await other.close()
        await own.close()
        return own_alive, other_alive, int(record["backends_terminated"])

    own_alive, other_alive, count = asyncio.run(scenario())
    assert not own_alive and other_alive and count >= 1


@pytest.mark.slow  # two nodes, one killed and restarted
def test_node_kill_kills_the_last_node_and_restarts_it_on_its_port(tmp_path: Path) -> None:
    nodes = [TargetProcess({**FAST_KDF, "AUTH_MODE": "jwt"}, log_path=tmp_path / f"n{i}.log")
             for i in (1, 2)]
    pinned: list[int] = []
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        before = nodes[1].pid
        injector = FaultInjector(Cell(nodes=2, fault="node-kill"), tmp_path, "", "ns",
                                 at=0.0, seconds=0.3)
        record = injector.inject(window_now(tmp_path), nodes, pinned.append)
        assert "error" not in record
        assert record["killed_pid"] == before != nodes[1].pid == record["restarted_pid"]
        assert pinned == [nodes[1].pid] and nodes[1].is_alive() and nodes[0].is_alive()
        assert (tmp_path / "n2.killed.log").exists()
    finally:
        for node in nodes:
            node.stop()


# --- one real cell, end to end -----------------------------------------------------------

@pytest.mark.slow  # a real faults cell with Locust
def test_a_faults_cell_records_the_fault_the_timeline_and_the_report(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_redis_server()
    monkeypatch.setattr(faults, "FAULT_AT", 2.0)
    monkeypatch.setattr(faults, "FAULT_SECONDS", 1.5)
    for key, value in FAST_KDF.items():
        monkeypatch.setenv(key, value)
    text = ('name = "f"\n[defaults]\nscenario = "faults"\nusers = 6\nduration = 7\n'
            'warmup = 1\nnodes = 2\n[[matrix]]\nmode = "jwt"\nstore = "redis"\n'
            'revocation = "blocklist"\nfault = "redis-restart-empty"\n')
    path = tmp_path / "f.toml"
    path.write_text(text)
    run = run_suite(load_suite(str(path), SERVICES),
                    RunOptions(results=tmp_path / "results", out=io.StringIO(),
                               redis_url=redis_url))
    cell = run.path / "cells" / "001-jwt-redis-HS256-blocklist-faults-u6-n2-redis-restart-empty-r1"
    record = json.loads((cell / "cell.json").read_text())
    assert record["status"] == "ok", record["reason"]
    assert record["fault"]["kind"] == "redis-restart-empty" and "error" not in record["fault"]
    assert record["target_env"]["STORE_URL"] != redis_url  # its own Redis, not the shared one
    assert list(cell.glob("timeline-*.json")) and (cell / "redis.log").exists()
    timelines = load_timelines(run.path)
    assert set(timelines["second"]) <= set(range(7)) and timelines["requests"].sum() > 0
    table = fault_table(timelines)
    assert len(table) == 1 and table.iloc[0]["wrongly_accepted"] == 0
    # While Redis is down the blocklist cannot be asked: 503s, never 200s.
    assert table.iloc[0]["failed"] > 0
    markdown = write_report(run.path)["markdown"].read_text()
    assert "## Availability when the store fails" in markdown
    assert "| Availability when the store fails |" in markdown
    assert (run.path / "charts" / "faults.png").exists()
