"""The State and Storage rows: bytes per live session from seeded counts and each store's own
memory figure, bytes per blocklist entry, credential bytes; and the verdicts they make."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.cost.table import Interval
from analysis.data.endpoints import ME
from analysis.store.state import (
    PerItem,
    StorageFigures,
    blocklist_bytes,
    credential_bytes,
    session_bytes,
    state,
    storage,
    storage_figures,
)
from analysis.verdict.table import NOT_MEASURED

MB = 2**20


def window(scale: int, rss_mb: float, *, repeat: int = 1, users: int = 20,
           mode: str = "session", rate: str = "") -> dict[str, Any]:
    """A closed-loop window of sessions in the memory store, one node."""
    return {"cell": f"s{scale}-r{repeat}-{rate}", "status": "ok", "endpoint": ME, "mode": mode,
            "store": "memory", "scale": scale, "nodes": 1, "users": users, "scenario": "read",
            "peak_rss_mb": rss_mb, "rate_spec": rate, "alg": "HS256",
            "credential_bytes": 49 if mode == "session" else 320}


def write_cell(run: Path, name: str, cell: dict[str, Any], before: dict[str, Any],
               **record: Any) -> None:
    """A cell.json as the runner writes it: the store's counters before the window."""
    folder = run / "cells" / name
    folder.mkdir(parents=True)
    full = {"mode": "session", "store": "redis", "scale": 0, "fault": "none", **cell}
    (folder / "cell.json").write_text(json.dumps(
        {"name": name, "cell": full, "status": "ok", "store": {"before": before}, **record}))


def test_memory_sessions_take_the_rss_slope_between_the_seeded_counts() -> None:
    # 100 MB + 300 B per session, each count read in 3 windows 1 MB apart; a window under a
    # rate and another load (5 users) are not the seeded configurations' and are left out.
    rows = [window(n, 100 + n * 300 / MB + jitter, repeat=r)
            for n in (100_000, 1_000_000) for r, jitter in ((1, -1.0), (2, 0.0), (3, 1.0))]
    rows += [window(1_000_000, 9_999.0, rate="50%"), window(0, 1.0, users=5)]
    [item] = session_bytes(None, pd.DataFrame(rows))
    assert (item.store, item.counts) == ("memory", (100_000, 1_000_000))
    assert item.bytes.median == pytest.approx(300.0)
    spread = 2 * MB / 900_000  # the extremes of the readings: ±(1 + 1) MB over 900,000
    assert item.bytes.low == pytest.approx(300.0 - spread)
    assert item.bytes.high == pytest.approx(300.0 + spread)
    assert item.bytes.n == 3 and item.text() == "memory 300 (298 to 302) B"
    # Readings that agree to the byte show one figure, however many windows read them.
    same = PerItem("memory", Interval(326.2, 326.1, 326.3, 4), (0, 300_000), "RSS")
    assert same.text() == "memory 326 B"


def test_one_seeded_count_is_read_against_the_unseeded_configuration() -> None:
    frame = pd.DataFrame([window(0, 100.0), window(500_000, 100 + 500_000 * 200 / MB)])
    [item] = session_bytes(None, frame)
    assert item.counts == (0, 500_000) and item.bytes.median == pytest.approx(200.0)
    assert session_bytes(None, pd.DataFrame([window(0, 100.0)])) == []  # nothing seeded


def test_redis_readings_come_from_cells_that_had_the_store_to_themselves(tmp_path: Path) -> None:
    base = 50_000_000
    write_cell(tmp_path, "001-a", {"scale": 100_000}, {"used_memory": base + 40_000_000})
    write_cell(tmp_path, "002-b", {"scale": 1_000_000}, {"used_memory": base + 400_000_000})
    # A windowed rig's reading holds every configuration's sessions; a fault's Redis is its
    # own; PostgreSQL reads its own tables.
    write_cell(tmp_path, "003-c", {"scale": 10}, {"used_memory": 1}, rig="rigs/x")
    write_cell(tmp_path, "004-d", {"scale": 10, "fault": "redis-restart"}, {"used_memory": 1})
    write_cell(tmp_path, "006-f", {"scale": 1_000, "store": "postgres"},
               {"tables": {"sessions": {"bytes": 300_000}, "users": {"bytes": 100_000}}})
    write_cell(tmp_path, "007-g", {"scale": 11_000, "store": "postgres"},
               {"tables": {"sessions": {"bytes": 3_300_000}, "users": {"bytes": 100_000}}})
    items = {i.store: i for i in session_bytes(tmp_path, pd.DataFrame())}
    assert set(items) == {"redis", "postgres"}
    assert items["redis"].bytes == Interval(400.0, 400.0, 400.0, 1)
    assert items["redis"].counts == (100_000, 1_000_000)
    assert items["postgres"].bytes.median == pytest.approx(300.0)
    assert "INFO used_memory" in items["redis"].method
    # A JWT cell seeds no sessions, whatever its scale says: the store without them, which a
    # single seeded count is read against.
    write_cell(tmp_path, "008-h", {"scale": 5, "mode": "jwt"}, {"used_memory": base})
    (tmp_path / "cells" / "001-a" / "cell.json").unlink()
    [redis] = [i for i in session_bytes(tmp_path, pd.DataFrame()) if i.store == "redis"]
    assert redis.counts == (0, 1_000_000) and redis.bytes.median == 400.0


def test_blocklist_entries_are_read_at_the_largest_count(tmp_path: Path) -> None:
    assert blocklist_bytes(tmp_path) == [] and blocklist_bytes(None) == []
    growth = [{"store": store, "entries": n, "bytes": n * per, "bytes_per_entry": per + n / 1e6,
               "insert_seconds": 1.0, "check_present_us": 1.0, "check_absent_us": 1.0,
               "bytes_method": "x"} for store, per in (("redis", 129.0), ("memory", 222.0))
              for n in (1_000, 1_000_000)]
    (tmp_path / "revocation.json").write_text(json.dumps(
        {"format": "authbench-revocation-storage/2", "growth": growth}))
    items = blocklist_bytes(tmp_path)
    assert [(i.store, i.bytes.median, i.counts) for i in items] == [
        ("redis", 130.0, (0, 1_000_000)), ("memory", 223.0, (0, 1_000_000))]


def test_credential_bytes_per_kind_smallest_first() -> None:
    frame = pd.DataFrame([window(0, 1.0), window(0, 1.0, mode="jwt"),
                          {**window(0, 1.0, mode="none"), "credential_bytes": None}])
    assert credential_bytes(frame) == {"session cookie": 49, "JWT HS256": 320}
    figures = storage_figures(None, frame)
    assert figures.sessions == [] and figures.credentials == {"session cookie": 49,
                                                              "JWT HS256": 320}


SESSIONS = [PerItem("memory", Interval(300.0, 298.0, 302.0, 4), (100_000, 1_000_000), "RSS"),
            PerItem("redis", Interval(400.0, 400.0, 400.0, 1), (100_000, 1_000_000), "INFO")]
BLOCKLIST = [PerItem("redis", Interval(129.0, 129.0, 129.0, 1), (0, 1_000_000), "INFO")]
CREDENTIALS = {"session cookie": 49, "JWT HS256": 320}


def test_state_holds_with_bytes_per_session_and_per_revoked_token() -> None:
    verdict = state(StorageFigures(SESSIONS, BLOCKLIST, CREDENTIALS))
    assert verdict.measured.startswith("bytes per live session, from the store's own figure at "
                                       "two seeded counts (median and range over the windows "
                                       "that read it): memory 300 (298 to 302) B (100,000 "
                                       "against 1,000,000 sessions; RSS); redis 400 B (100,000 "
                                       "against 1,000,000 sessions; INFO)")
    assert "bytes per blocklist entry (a revoked JWT, kept until its exp; 1,000,000 entries" \
        in verdict.measured
    assert verdict.verdict == ("holds: every live session holds state in its store (memory 300 "
                               "(298 to 302) B, redis 400 B each); a JWT holds none until it is "
                               "revoked, then a blocklist entry until its exp (redis 129 B): "
                               "revocation makes JWT stateful per revoked token")


def test_state_is_not_measured_without_seeds_and_does_not_hold_without_growth() -> None:
    assert state(StorageFigures()).verdict == NOT_MEASURED
    flat = [PerItem("memory", Interval(-3.0, -10.0, 4.0, 4), (100_000, 1_000_000), "RSS")]
    assert state(StorageFigures(flat)).verdict.startswith("does not hold as measured")


def test_storage_sets_the_server_side_bytes_against_the_bytes_each_request_carries() -> None:
    verdict = storage(StorageFigures(SESSIONS, BLOCKLIST, CREDENTIALS))
    assert ("client side, credential bytes each request carries: session cookie 49 B, "
            "JWT HS256 320 B") in verdict.measured
    assert verdict.verdict == ("holds: a session's data sits in the store (memory 300 (298 to "
                               "302) B, redis 400 B each) and only its 49 B cookie travels; a "
                               "JWT carries its claims to the server on every request (320 B, "
                               "up to 271 B more than the cookie)")
    assert storage(StorageFigures()).verdict == NOT_MEASURED
    client_only = storage(StorageFigures(credentials=CREDENTIALS))  # quick: nothing seeded
    assert client_only.verdict == NOT_MEASURED
    assert client_only.measured.startswith("client side, credential bytes each request")
    assert storage(StorageFigures(SESSIONS)).verdict.startswith("needs both")
