"""authbench bench-store: the tools' output read right, the verdicts, and real short runs."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import asyncpg
import psutil
import pytest

from analysis.store.ceiling import mode_ceiling, parse_store_ceiling, store_capacity_rps
from authbench.bench.storeceiling.measure import store_ceiling_extra
from authbench.bench.storeceiling.operations import (
    NAMESPACE,
    SQL_OPERATIONS,
    blocked_jti,
    mode_operations,
    redis_operations,
    session_key,
)
from authbench.bench.storeceiling.postgres_ceiling import SETTLED_AT, parse_pgbench
from authbench.bench.storeceiling.redis_ceiling import (
    BenchmarkFigures,
    ServerCounters,
    counter_delta,
    parse_benchmark_csv,
    repeat_figures,
)
from authbench.bench.storeceiling.result import (
    RESULT_FILE,
    StoreCeilingConfig,
    StoreCeilingError,
    summarize,
    verdict,
)
from authbench.bench.storeceiling.tools import (
    CpuPlan,
    ToolMissing,
    disturbance,
    limited_by,
    require_tools,
    run_pinned,
)
from authbench.cli import build_parser, main
from tests.conftest import IS_CI

CLOSED = {"redis": "redis://127.0.0.1:1/0", "postgres": "postgresql://postgres@127.0.0.1:1/test"}
# redis-benchmark 7.0.15 --csv on a SET of a session value: the row's first field keeps
# the JSON's quotes unescaped.
REDIS_CSV = (
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
    '"p99_latency_ms","max_latency_ms"\n'
    '"SET authbench:s:5e5e__rand_int__ ["user0","wLOwP_A9a5sDoMKfPWrR-q8GeXJpgl33ING3TcK_dLM",'
    '1796660982.4907935,1796662782.4907935,1796704182.4907935] PX 1800000 XX","113636.37",'
    '"0.060","0.016","0.055","0.103","0.199","1.199"\n')
# pgbench 15.20 -n -M prepared -c 20 -j 1 -T 3 -P 1: totals on stdout, progress on stderr.
PGBENCH_STDOUT = """pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: s.sql
scaling factor: 1
query mode: prepared
number of clients: 20
number of threads: 1
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 147395
number of failed transactions: 0 (0.000%)
latency average = 0.291 ms
latency stddev = 0.407 ms
initial connection time = 90.528 ms
tps = 50593.706739 (without initial connection time)
"""
PGBENCH_STDERR = """progress: 1.0 s, 45127.4 tps, lat 0.294 ms stddev 0.477, 0 failed
progress: 2.0 s, 51152.7 tps, lat 0.285 ms stddev 0.319, 0 failed
progress: 3.0 s, 50920.0 tps, lat 0.292 ms stddev 0.413, 0 failed
"""


def test_redis_benchmark_csv_is_read_from_the_right() -> None:
    figures = parse_benchmark_csv(REDIS_CSV)
    assert figures == BenchmarkFigures(113636.37, 0.060, 0.055, 0.199)


@pytest.mark.parametrize("text", ["", '"test","rps"\n', "Could not connect to Redis\n"])
def test_redis_benchmark_without_a_result_row_is_an_error(text: str) -> None:
    with pytest.raises(StoreCeilingError, match="redis-benchmark printed 0 result rows"):
        parse_benchmark_csv(text)


def test_pgbench_output_is_read_and_the_first_second_left_out() -> None:
    figures = parse_pgbench(PGBENCH_STDOUT, PGBENCH_STDERR)
    assert (figures.tps, figures.transactions, figures.failed, figures.latency_avg_ms) == (
        50593.706739, 147395, 0, 0.291)
    assert figures.progress[0] == (1.0, 45127.4)
    assert SETTLED_AT == 1.0
    assert figures.steady_tps() == pytest.approx((51152.7 + 50920.0) / 2)
    assert parse_pgbench(PGBENCH_STDOUT, "").steady_tps() == 50593.706739  # no progress


def test_unreadable_pgbench_output_is_an_error() -> None:
    with pytest.raises(StoreCeilingError, match="unreadable pgbench output"):
        parse_pgbench("connection to server failed\n", "")


def test_server_counters_give_cpu_per_command() -> None:
    before = ServerCounters(10.0, {"get": 1_000, "info": 5}, {"get": 300, "info": 50}, 0)
    after = ServerCounters(10.9, {"get": 101_000, "info": 8, "config|get": 2},
                           {"get": 30_300, "info": 80, "config|get": 10}, 0)
    delta = counter_delta(before, after, "GET")
    assert delta == pytest.approx({"cpu_s": 0.9, "commands": 100_005, "calls": 100_000,
                                   "command_us_per_call": 0.3, "failed": 0})
    row = repeat_figures(BenchmarkFigures(100_000.0, 0.3, 0.25, 0.6), delta, 100_000,
                         client_cpu_s=0.97, wall_s=1.02, busy=[0.95, 0.97])
    assert row["seconds"] == 1.0  # requests / rps: redis-benchmark's own clock
    assert row["store_cpu_share"] == 0.9
    assert row["cpu_us_per_op"] == pytest.approx(0.9e6 / 100_005)
    assert row["client_cpu_share"] == pytest.approx(0.951, abs=1e-3)
    assert row["limited_by"] == "store and client"


@pytest.mark.parametrize(("store", "client", "expected"), [
    (0.97, 0.40, "store"), (0.60, 0.95, "client"), (0.92, 0.91, "store and client"),
    (0.50, 0.50, "neither"), (None, 0.95, "client"),
    (None, 0.20, "unknown (store CPU not measured)"),
])
def test_what_ran_out(store: float | None, client: float | None, expected: str) -> None:
    assert limited_by(store, client) == expected


def test_other_work_on_the_cpus_marks_a_repeat() -> None:
    plan = CpuPlan((0,), (1,))
    quiet = disturbance([0.97, 0.60], plan, store_share=0.95, client_share=0.55, is_pinned=True)
    assert quiet == {"other_load": {"store_cpus": 0.02, "client_cpus": 0.05},
                     "is_disturbed": False}
    # The client's CPU 88 % busy while pgbench took 43 %: 45 % went to something else.
    shared = disturbance([0.73, 0.88], plan, store_share=0.66, client_share=0.43,
                         is_pinned=True)
    assert shared["other_load"]["client_cpus"] == pytest.approx(0.45)
    assert shared["is_disturbed"] is True
    unplaced = disturbance([0.9, 0.9], plan, 0.5, 0.5, is_pinned=False)
    assert unplaced["is_disturbed"] is False  # unpinned: whose CPU was it? not judged


def test_repeats_summarized_by_median_and_one_verdict() -> None:
    rows = [{"ops_per_s": rate, "cpu_us_per_op": cost, "limited_by": limit,
             "is_disturbed": rate == 90.0}
            for rate, cost, limit in [(90.0, 11.0, "store"), (100.0, 10.0, "store"),
                                      (120.0, 9.0, "client")]]
    entry = summarize({"command": "GET k"}, rows, cores=1)
    assert (entry["ops_per_s_median"], entry["cpu_us_per_op_median"]) == (100.0, 10.0)
    assert entry["ops_per_s_spread"] == pytest.approx(0.3)
    assert entry["ops_per_s_at_full_cpu"] == pytest.approx(100_000.0)
    assert entry["limited_by"] == "mixed: store, client"
    assert entry["disturbed_repeats"] == 1
    assert summarize({}, rows, cores=None)["ops_per_s_at_full_cpu"] is None
    assert verdict(["store", "store"]) == "store"


def test_benchmark_keys_are_as_long_as_real_ones() -> None:
    real_sid_hash = "a" * 64  # hash_secret: a sha256 hex digest
    assert len(session_key(7)) == len(real_sid_hash)
    assert len(blocked_jti(7)) == len(secrets.token_urlsafe(16))  # a jti
    operations = redis_operations(b'["user1","csrf",1.0,2.0,3.0]')
    get = operations["session-get"].args[1].replace("__rand_int__", "0" * 12)
    assert get == f"{NAMESPACE}:s:{session_key(0)}"
    jti = operations["revocation-check"].args[1].removeprefix(f"{NAMESPACE}:bl:")
    assert len(jti.replace("__rand_int__", "0" * 12)) == 22
    assert operations["revocation-check"].args[3] == f"{NAMESPACE}:epoch"


def test_every_mode_names_measured_operations() -> None:
    measured = {"redis": set(redis_operations(b"v")), "postgres": set(SQL_OPERATIONS)}
    for mode, entry in mode_operations().items():
        for op in [*entry["per_request"], *entry["periodic"]]:
            assert op["operation"] in measured[op["store"]], mode
    assert mode_operations()["jwt-redis-pubsub"]["per_request"] == []


def test_pgbench_scripts_pick_a_loaded_key() -> None:
    script = SQL_OPERATIONS["session-get"].script("ab_sc_x", 1000, 10)
    assert script.startswith("\\set n random(0, 999)\n\\set u random(0, 9)\n")
    assert "FROM ab_sc_x.sessions WHERE key = " in script
    assert "{" not in script  # every placeholder filled


def test_run_pinned_counts_the_child_s_cpu_on_its_cpu() -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    busy = ("import os, time\nend = time.process_time() + 0.2\n"
            "while time.process_time() < end: pass\nprint(sorted(os.sched_getaffinity(0)))")
    done = run_pinned([sys.executable, "-c", busy], (cpu,))
    assert (done.returncode, done.stdout.strip()) == (0, f"[{cpu}]")
    assert 0.15 <= done.cpu_s <= done.wall_s + 0.05


def test_missing_tools_named_with_their_packages(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing installed
    with pytest.raises(ToolMissing, match=r"^pgbench not installed \(Debian/Ubuntu: apt-get "
                                          r"install postgresql-client\)$"):
        require_tools(("postgres",))


def test_bench_store_without_its_tools_is_one_line_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["bench-store", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err == ("authbench bench-store: redis-server, redis-benchmark, pgbench not "
                   "installed (Debian/Ubuntu: apt-get install postgresql-client redis-server "
                   "redis-tools)\n")
    assert not (tmp_path / "results").exists()


def test_bench_store_into_a_folder_that_is_no_run(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-store", "--into", str(tmp_path)]) == 2
    assert "not an authbench run" in capsys.readouterr().err


def test_bench_store_takes_stores_comma_separated() -> None:
    args = build_parser().parse_args(["bench-store", "--stores", "postgres,redis"])
    assert args.stores == ["postgres", "redis"]
    assert build_parser().parse_args(["bench-store"]).stores == ["redis", "postgres"]


def test_bench_store_refuses_an_unknown_store(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["bench-store", "--stores", "redis,memory"])
    assert stopped.value.code == 2
    assert "choose from redis, postgres" in capsys.readouterr().err


def test_extra_with_no_store_answering_writes_nothing(tmp_path: Path) -> None:
    extra = store_ceiling_extra()
    assert extra.filename == RESULT_FILE
    lines: list[str] = []
    with pytest.raises(StoreCeilingError, match="no store measured"):
        extra.measure(tmp_path, CLOSED, lines.append)
    assert not (tmp_path / RESULT_FILE).exists()
    assert any(line.startswith("note: redis not measured:") for line in lines)


def _needs_redis_server() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        if IS_CI:
            pytest.fail("CI needs redis-server and redis-benchmark installed")
        pytest.skip("redis-server or redis-benchmark is not installed")


@pytest.mark.slow  # redis-benchmark on a private server, a few short repeats
@pytest.mark.redis
def test_bench_store_on_redis(redis_url: str, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _needs_redis_server()
    assert main(["bench-store", "--stores", "redis", "--seconds", "0.3", "--repeats", "2",
                 "--keys", "2000", "--redis-url", redis_url,
                 "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    [path] = tmp_path.glob(f"bench-store-*/{RESULT_FILE}")
    assert f"results: {path}" in out and "session-redis" in out
    data = json.loads(path.read_text())
    assert data["format"] == "authbench-store-ceiling/1"
    assert (list(data["stores"]), data["skipped"]) == (["redis"], {})
    redis = data["stores"]["redis"]
    assert redis["loaded"]["sessions"] == redis["loaded"]["blocklist"] == 2000
    if len(os.sched_getaffinity(0)) >= 2:
        assert redis["is_pinned"] and not set(redis["store_cpus"]) & set(redis["client_cpus"])
    ops = redis["operations"]
    assert set(ops) == {"session-get", "session-touch", "revocation-check"}
    for op in ops.values():
        assert len(op["ops_per_s"]) == 2 and min(op["ops_per_s"]) > 1_000
        assert 0.3 < op["cpu_us_per_op_median"] < 1_000
        assert op["limited_by"] and {"other_load", "is_disturbed"} <= set(op["repeats"][0])
    assert ops["session-get"]["key_bytes"] == [len(f"{NAMESPACE}:s:") + 64]
    assert ops["session-get"]["value_bytes"][0] > 90  # a stored session record
    assert ops["revocation-check"]["value_bytes"][:2] == [0, 0]  # live token: both miss
    assert ops["revocation-check"]["value_bytes"][2] > 50  # the marker
    ceiling = parse_store_ceiling(data, path)
    # 1 / (1 / x): equal but for the last bit
    assert store_capacity_rps(ceiling, "session-redis") == pytest.approx(
        ops["session-get"]["ops_per_s_median"])
    assert mode_ceiling(ceiling, "jwt-redis-blocklist") == pytest.approx(
        ops["revocation-check"]["ops_per_s_median"])
    assert not [p for p in psutil.Process().children(recursive=True)
                if p.name() == "redis-server"]  # the private server is gone


async def _schemas(url: str, name: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name))
    finally:
        await conn.close()


@pytest.mark.slow  # pgbench per operation
@pytest.mark.postgres  # synchronous: the extra runs its own event loops, as the runner's
def test_extra_on_postgres_skips_the_store_that_does_not_answer(
        postgres_url: str, tmp_path: Path) -> None:
    if shutil.which("pgbench") is None:
        pytest.fail("pgbench is not installed") if IS_CI else pytest.skip("no pgbench")
    lines: list[str] = []
    extra = store_ceiling_extra(StoreCeilingConfig(seconds=1.0, repeats=1, keys=2000))
    extra.measure(tmp_path, {"redis": CLOSED["redis"], "postgres": postgres_url}, lines.append)
    data = json.loads((tmp_path / RESULT_FILE).read_text())
    assert data["skipped"] == {"redis": "nothing answers at 127.0.0.1:1"}
    postgres = data["stores"]["postgres"]
    assert set(postgres["operations"]) == set(SQL_OPERATIONS)
    for op in postgres["operations"].values():
        assert op["ops_per_s_median"] > 100 and op["clients"] == 20
        assert op["repeats"][0]["client_cpu_share"] > 0
    schema = next(line for line in lines if line.startswith("postgres: schema ")).split()[2]
    assert asyncio.run(_schemas(postgres_url, schema)) == 0  # dropped afterwards
    ceiling = parse_store_ceiling(data)
    assert store_capacity_rps(ceiling, "session-redis") is None  # not measured
    assert store_capacity_rps(ceiling, "jwt-postgres-blocklist") == pytest.approx(
        postgres["operations"]["revocation-check"]["ops_per_s_median"])
