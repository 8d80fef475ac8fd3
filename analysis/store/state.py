"""The State and Storage rows: what a live session and a revoked token take in each store,
and what a credential adds to every request (also the Cross-Domain and Mobile rows: the
bytes a cookie or a bearer token carries).

- Bytes per live session: cells seeded with `scale` live sessions, each store's own memory
  figure read at two seeded counts; the slope, Δbytes / Δsessions, is what one more session
  takes. The memory store: the resident memory (RSS) of the target process that holds the
  sessions, sampled over each window. Redis: INFO used_memory before the window, from cells
  that had the store to themselves (a rig of their own; a windows run's windowed rigs share
  one Redis, so their readings hold every configuration's sessions and are left out).
  PostgreSQL: the cell's own tables (pg_total_relation_size) before the window. A JWT or
  hybrid cell seeds no sessions: its reading is the store without them.
- Bytes per blocklist entry: the revocation-storage extra (revocation.json), at its largest
  count in each store.
- Credential bytes per request: what the conformance check measured on the wire.

Each figure is an Interval: over windows where the store was read in several (the range of
the slope from the readings' extremes), a single reading otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.cost.table import Interval
from analysis.data.endpoints import ME
from analysis.data.load import cell_folders
from analysis.report.formatting import number
from analysis.revocation.storage import RESULT_FILE, growth_table, load_revocation
from analysis.verdict.table import NOT_MEASURED, Verdict

METHODS = {"memory": "RSS of the target process holding them",
           "redis": "Redis INFO used_memory, whole server",
           "postgres": "the cell's PostgreSQL tables with their indexes"}
ENTRY_METHODS = {"memory": "Python heap (tracemalloc)", "redis": "Redis INFO used_memory",
                 "postgres": "table and index"}


@dataclass(frozen=True)
class PerItem:
    """Bytes one more item (a live session, a blocklist entry) takes in one store."""

    store: str
    bytes: Interval
    counts: tuple[int, int]  # the counts compared (0, n: one count against an empty start)
    method: str

    def text(self) -> str:
        """'redis 412 B', 'memory 337 (331 to 344) B'; one figure where every reading agreed."""
        value = self.bytes
        agreed = number(value.low, 0) == number(value.high, 0)
        shown = number(value.median, 0) if agreed else value.text(0)
        return f"{self.store} {shown} B"


@dataclass(frozen=True)
class StorageFigures:
    """What the State and Storage rows rest on."""

    sessions: list[PerItem] = field(default_factory=list)
    blocklist: list[PerItem] = field(default_factory=list)
    credentials: dict[str, int] = field(default_factory=dict)  # label -> bytes per request


def _slope(readings: dict[int, list[float]]) -> tuple[Interval, tuple[int, int]] | None:
    """Bytes per item between the lowest and highest count (readings: count -> bytes)."""
    counts = sorted(c for c, values in readings.items() if values)
    if len(counts) < 2 or counts[-1] <= 0:
        return None
    low, high = counts[0], counts[-1]
    span = float(high - low)
    lo, hi = Interval.of(readings[low]), Interval.of(readings[high])
    return (Interval((hi.median - lo.median) / span, (hi.low - lo.high) / span,
                     (hi.high - lo.low) / span, min(lo.n, hi.n)), (low, high))


def _memory_readings(frame: pd.DataFrame) -> dict[int, list[float]]:
    """Sessions in the memory store: each window's RSS of its one node, by seeded count."""
    needed = {"mode", "store", "scale", "nodes", "peak_rss_mb", "endpoint"}
    if frame.empty or not needed <= set(frame):
        return {}
    rows = frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)
                 & (frame["mode"] == "session") & (frame["store"] == "memory")
                 & (frame["nodes"] == 1)]
    if "rate_spec" in rows:
        rows = rows[rows["rate_spec"].fillna("") == ""]
    if not (rows["scale"] > 0).any():
        return {}
    # One load: the seeded configurations' users, scenario (RSS grows with either).
    seeded = rows[rows["scale"] > 0].iloc[0]
    rows = rows[(rows["users"] == seeded["users"]) & (rows["scenario"] == seeded["scenario"])]
    return {int(scale): [v * 2**20 for v in group["peak_rss_mb"] if not math.isnan(v) and v > 0]
            for scale, group in rows.groupby("scale")}


def _store_readings(run: Path) -> dict[str, dict[int, list[float]]]:
    """Sessions in Redis and PostgreSQL: the store's own figure before each window."""
    found: dict[str, dict[int, list[float]]] = {}
    for _, record in cell_folders(run):
        cell = record["cell"]
        if record.get("status") != "ok" or cell.get("mode") == "none":
            continue
        before = (record.get("store") or {}).get("before") or {}
        # Sessions seeded: the cell's scale; JWT and hybrid cells seed none (the baseline).
        store = str(cell.get("store"))
        scale = int(cell.get("scale") or 0) if cell.get("mode") == "session" else 0
        if store == "redis" and isinstance(before.get("used_memory"), int) \
                and "rig" not in record and cell.get("fault", "none") == "none":
            found.setdefault(store, {}).setdefault(scale, []).append(float(before["used_memory"]))
        elif store == "postgres" and before.get("tables"):
            size = sum(float(t.get("bytes") or 0) for t in before["tables"].values())
            found.setdefault(store, {}).setdefault(scale, []).append(size)
    return found


def session_bytes(run: Path | None, frame: pd.DataFrame) -> list[PerItem]:
    """Bytes per live session in each store this run seeded at two counts or more."""
    readings = {"memory": _memory_readings(frame)}
    if run is not None:
        readings.update(_store_readings(run))
    items = []
    for store in ("memory", "redis", "postgres"):
        found = _slope(readings.get(store, {}))
        if found is not None:
            items.append(PerItem(store, found[0], found[1], METHODS[store]))
    return items


def blocklist_bytes(run: Path | None) -> list[PerItem]:
    """Bytes per blocklist entry in each store, at the extra's largest count."""
    if run is None or not (run / RESULT_FILE).exists():
        return []
    growth = growth_table(load_revocation(run / RESULT_FILE))
    items = []
    for store, group in growth.groupby("store", sort=False):
        last = group.sort_values("entries").iloc[-1]
        items.append(PerItem(str(store), Interval.of([float(last["bytes_per_entry"])]),
                             (0, int(last["entries"])), ENTRY_METHODS.get(str(store), "")))
    return items


def credential_bytes(frame: pd.DataFrame) -> dict[str, int]:
    """Bytes of credential each request carries, per kind (session cookie, JWT by alg)."""
    if frame.empty or "credential_bytes" not in frame:
        return {}
    cells = frame[(frame["status"] == "ok") & frame["credential_bytes"].notna()
                  & (frame["mode"] != "none")]
    sizes = {("session cookie" if mode == "session" else
              f"{'JWT' if mode == 'jwt' else 'hybrid'} {alg}"): int(group["credential_bytes"].max())
             for (mode, alg), group in cells.groupby(["mode", "alg"])}
    return dict(sorted(sizes.items(), key=lambda item: item[1]))


def storage_figures(run: Path | None, frame: pd.DataFrame) -> StorageFigures:
    """Everything the two rows need, from the run folder and its frame."""
    return StorageFigures(session_bytes(run, frame), blocklist_bytes(run), credential_bytes(frame))


def _sessions_text(items: list[PerItem]) -> str:
    return ("bytes per live session, from the store's own figure at two seeded counts (median "
            "and range over the windows that read it): " + "; ".join(
                f"{i.text()} ({number(i.counts[0], 0)} against {number(i.counts[1], 0)} "
                f"sessions; {i.method})" for i in items))


def _blocklist_text(items: list[PerItem]) -> str:
    most = max(item.counts[1] for item in items)
    return (f"bytes per blocklist entry (a revoked JWT, kept until its exp; "
            f"{number(most, 0)} entries, one reading): "
            + "; ".join(f"{i.text()} ({i.method})" for i in items))


def state(figures: StorageFigures) -> Verdict:
    """Sessions are stateful (bytes per live session); JWT is stateless until revoked."""
    claim = "Sessions are stateful; JWT is stateless."
    if not figures.sessions:
        return Verdict("State", claim, "no store was seeded at two counts of live sessions",
                       NOT_MEASURED)
    parts = [_sessions_text(figures.sessions)]
    if figures.blocklist:
        parts.append(_blocklist_text(figures.blocklist))
    grows = [i for i in figures.sessions if i.bytes.median > 0]
    if not grows:
        return Verdict("State", claim, ". ".join(parts),
                       "does not hold as measured: the store did not grow with live sessions")
    sizes = ", ".join(i.text() for i in grows)
    verdict = f"holds: every live session holds state in its store ({sizes} each)"
    if figures.blocklist:
        entries = ", ".join(i.text() for i in figures.blocklist)
        verdict += (f"; a JWT holds none until it is revoked, then a blocklist entry until "
                    f"its exp ({entries}): revocation makes JWT stateful per revoked token")
    return Verdict("State", claim, ". ".join(parts), verdict)


def storage(figures: StorageFigures) -> Verdict:
    """Sessions live on the server (bytes per session); JWTs on the client (bytes carried)."""
    claim = "Sessions live in server memory/Redis/DB; JWTs live on the client."
    parts = []
    if figures.sessions:
        parts.append("server side: " + _sessions_text(figures.sessions))
    if figures.credentials:
        parts.append("client side, credential bytes each request carries: " + ", ".join(
            f"{label} {size:,} B" for label, size in figures.credentials.items()))
    if figures.blocklist:
        parts.append("server side for JWT: " + _blocklist_text(figures.blocklist))
    measured = ". ".join(parts)
    if not figures.sessions:  # what the client carries alone does not settle where data lives
        return Verdict("Storage", claim, measured or "no credential measured",
                       NOT_MEASURED)
    cookie = figures.credentials.get("session cookie")
    tokens = {k: v for k, v in figures.credentials.items() if k != "session cookie"}
    if cookie is None or not tokens:
        return Verdict("Storage", claim, measured,
                       "needs both: the session cookie's and a JWT's bytes on the wire")
    least, most = min(tokens.values()), max(tokens.values())
    size = f"{most:,} B" if least == most else f"{least:,} to {most:,} B"
    return Verdict("Storage", claim, measured,
                   "holds: a session's data sits in the store ("
                   + ", ".join(i.text() for i in figures.sessions)
                   + f" each) and only its {cookie} B cookie travels; a JWT carries its claims "
                   f"to the server on every request ({size}, up to {most - cookie:,} B more "
                   "than the cookie)")


def transport(frame: pd.DataFrame) -> list[Verdict]:
    """Cookie against header transport (Cross-Domain, Mobile): the bytes each request carries."""
    claim_cross = "Sessions: cross-domain is difficult (cookies are domain-bound). JWT: easy."
    claim_mobile = "Sessions: cookie handling varies by platform. JWT: works everywhere."
    sizes = credential_bytes(frame)
    if not sizes:
        return [Verdict("Cross-Domain", claim_cross, "no credential measured", NOT_MEASURED),
                Verdict("Mobile", claim_mobile, "no credential measured", NOT_MEASURED)]
    measured = "credential bytes per request: " + ", ".join(
        f"{label} {size:,} B" for label, size in sizes.items())
    cookie = sizes.get("session cookie")
    tokens = {k: v for k, v in sizes.items() if k != "session cookie"}
    both = (f"a bearer token of up to {max(tokens.values()):,} B against a {cookie:,} B cookie"
            if cookie is not None and tokens else measured)
    return [
        Verdict("Cross-Domain", claim_cross, measured,
                "depends on deployment, not measurable by load: a header token crosses "
                f"origins at the price of its bytes ({both}, on every request); cookies need "
                "same-site hosting"),
        Verdict("Mobile", claim_mobile, measured,
                f"depends on the client: the load generator sent both without trouble ({both})"),
    ]
