"""authbench bench-revocation at small sizes, against the real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from authbench.bench.revocation import stores
from authbench.bench.revocation.measure import run_revocation_bench
from authbench.bench.revocation.result import RevocationBenchConfig
from authbench.bench.revocation.stores import private_store, raise_if_cancelled
from authbench.cli import main
from targets.stores import RedisStore
from tests.analysis.fixtures import ROOT

CLOSED_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
CLOSED_POSTGRES = "postgresql://postgres@127.0.0.1:1/test"
SMALL = {"max_entries": 3000, "logout_rate": 500.0, "token_ttl": 1.0, "steady_seconds": 3.0,
         "k": (1, 5), "reps": 3}
SMALL_FLAGS = ["--max-entries", "3000", "--k", "1", "5", "--reps", "2"]


@pytest.fixture(scope="module")
def namespaces() -> list[str]:
    return []


@pytest.fixture(scope="module")
def result(redis_url: str, postgres_url: str, namespaces: list[str]) -> dict[str, Any]:
    """One small run over the three stores, shared by the tests that read it."""
    made = stores._namespace

    def recorded() -> str:
        namespaces.append(made())
        return namespaces[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stores, "_namespace", recorded)
        config = RevocationBenchConfig(redis_url=redis_url, postgres_url=postgres_url, **SMALL)
        lines: list[str] = []
        found = run_revocation_bench(config, lines.append)
    assert any(line.startswith("  growth redis") for line in lines)
    return found


def test_config_caps_checkpoints_and_picks_repetitions() -> None:
    config = RevocationBenchConfig(max_entries=3000)
    assert config.growth_checkpoints() == [1000, 3000]
    assert RevocationBenchConfig().growth_checkpoints() == [1_000, 10_000, 100_000, 1_000_000]
    assert (config.reps_for(100), config.reps_for(1000)) == (20, 5)
    assert RevocationBenchConfig(reps=3).reps_for(1000) == 3
    assert config.steady_duration() == 18.0


@pytest.mark.slow  # the benchmark over three stores
def test_result_has_every_field(result: dict[str, Any]) -> None:
    assert result["format"] == "authbench-revocation-storage/2"
    assert {"started", "ended", "config", "machine", "notes", "growth", "steady_state",
            "logout_all"} <= set(result)
    assert result["config"]["checkpoints"] == [1000, 3000]
    assert "python" in result["machine"]
    assert {row["store"] for row in result["growth"]} == {"memory", "redis", "postgres"}
    for row in result["growth"]:
        assert {"store", "entries", "bytes", "bytes_per_entry", "bytes_method",
                "insert_seconds", "check_present_us", "check_absent_us"} <= set(row)
        assert row["check_present_us"] > 0 and row["check_absent_us"] > 0
    assert {"store", "rate_per_s", "ttl_s", "seconds", "samples", "plateau_entries",
            "model_entries", "plateau_bytes"} <= set(result["steady_state"][0])
    assert any("Hybrid" in note for note in result["notes"])
    json.dumps(result)  # it must be writable as it is


@pytest.mark.slow  # the benchmark over three stores
def test_entries_counted_are_the_entries_inserted(result: dict[str, Any]) -> None:
    for row in result["growth"]:
        assert row["entries"] == row["inserted"], row


@pytest.mark.slow  # the benchmark over three stores
def test_bytes_grow_with_entries_within_plausible_sizes(result: dict[str, Any]) -> None:
    for store in ("memory", "redis", "postgres"):
        rows = [row for row in result["growth"] if row["store"] == store]
        assert [row["entries"] for row in rows] == [1000, 3000]
        assert rows[0]["bytes"] < rows[1]["bytes"], store
    largest = {row["store"]: row["bytes_per_entry"] for row in result["growth"]
               if row["entries"] == 3000}
    assert 40 <= largest["redis"] <= 400
    assert 40 <= largest["postgres"] <= 400
    assert 100 <= largest["memory"] <= 1000  # a str, two tuples, a float, dict and heap slots


@pytest.mark.slow  # the benchmark over three stores
def test_steady_state_plateau_follows_little_s_law(result: dict[str, Any]) -> None:
    steady = result["steady_state"][0]
    assert steady["store"] == "redis"
    assert steady["model_entries"] == 500 * 1.0 / 2
    assert steady["model_entries"] / 2 <= steady["plateau_entries"] <= 2 * steady["model_entries"]
    times = [at for at, _ in steady["samples"]]
    assert len(times) >= 6 and times == sorted(times)
    assert steady["plateau_bytes"] == pytest.approx(
        steady["plateau_entries"] * steady["bytes_per_entry"])


@pytest.mark.slow  # the benchmark over three stores
def test_logout_all_removes_every_session(result: dict[str, Any]) -> None:
    rows = result["logout_all"]
    for store in ("memory", "redis", "postgres"):
        deletes = [r for r in rows if r["store"] == store and r["op"] == "delete_user_sessions"]
        assert [(r["k"], r["removed"], r["reps"]) for r in deletes] == [(1, 1, 3), (5, 5, 3)]
        cutoff = [r for r in rows if r["store"] == store and r["op"] == "set_user_cutoff"]
        assert len(cutoff) == 1 and cutoff[0]["median_ms"] > 0


@pytest.mark.slow  # the benchmark over three stores
async def test_every_namespace_is_dropped(result: dict[str, Any], namespaces: list[str],
                                          redis_url: str, postgres_url: str) -> None:
    assert len(namespaces) >= 7  # growth x3, steady state, logout-all x3
    store = RedisStore(redis_url, "unused", 5.0, 1)
    try:
        for namespace in namespaces:
            assert await store.client.execute("KEYS", f"{namespace}:*") == []
    finally:
        await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        left = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)",
                                namespaces)
    finally:
        await conn.close()
    assert left == []


async def test_namespace_is_dropped_when_the_measurement_fails(redis_url: str) -> None:
    config = RevocationBenchConfig(redis_url=redis_url)
    with pytest.raises(RuntimeError, match="broke"):
        async with private_store("redis", config) as meter:
            await meter.store.block_token("jti", time.time() + 60)
            namespace = meter.namespace
            raise RuntimeError("broke")
    store = RedisStore(redis_url, namespace, 5.0, 1)
    try:
        assert await store.client.execute("KEYS", f"{namespace}:*") == []
    finally:
        await store.close()


async def test_a_swallowed_cancellation_still_stops_the_run() -> None:
    async def step() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # as 3.11's wait_for may do
            await asyncio.sleep(0)
        raise_if_cancelled()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(step())
    raise_if_cancelled()  # a task nobody cancelled goes on


@pytest.mark.slow  # the whole command and its report
def test_cli_writes_into_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(ROOT / "tiny", run)  # a finished run, whose report then gains the section
    assert main(["bench-revocation", "--stores", "memory", *SMALL_FLAGS, "--into",
                 str(run)]) == 0
    data = json.loads((run / "revocation.json").read_text())
    assert [row["entries"] for row in data["growth"]] == [1000, 3000]
    assert data["steady_state"] == []  # it runs on Redis only
    out = capsys.readouterr().out
    assert "delete_user_sessions" in out and "B/entry" in out
    report = (run / "report.md").read_text()
    assert "## Revocation" in report and "### Blocklist storage" in report
    assert (run / "charts" / "revocation-storage.svg").exists()


def test_cli_refuses_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench-revocation", "--stores", "memory", "--into", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not an authbench run (no metadata.json)" in err
    assert not (tmp_path / "revocation.json").exists()


def test_cli_skips_an_unreachable_store_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench-revocation", *SMALL_FLAGS, "--redis-url", CLOSED_REDIS,
                 "--postgres-url", CLOSED_POSTGRES, "--results", str(tmp_path)]) == 0
    (folder,) = tmp_path.iterdir()
    assert folder.name.endswith("-revocation")
    data = json.loads((folder / "revocation.json").read_text())
    assert {row["store"] for row in data["growth"]} == {"memory"}
    assert any("redis not measured" in note and "127.0.0.1:1" in note for note in data["notes"])
    assert any("postgres not measured" in note for note in data["notes"])
    assert "redis not measured" in capsys.readouterr().err
    # A folder of its own gets a report of its own.
    page = (folder / "report.html").read_text()
    assert "<h3>Blocklist storage</h3>" in page and "id=chart-revocation-storage" in page
