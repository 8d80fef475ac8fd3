"""The article's head-to-head table, re-derived from a run: claim, measurement, verdict.

Pure functions of the tidy DataFrame. A verdict is "holds", "does not hold",
"depends on ..." or "not measured in this run"; the measured text always carries
the numbers it rests on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from analysis.revocation import lag_table, overhead_table, revocation_summary, strategy_of

HOT = "GET /api/me"
NOT_MEASURED = "not measured in this run"


@dataclass(frozen=True)
class Verdict:
    """One row of the re-checked table."""

    row: str
    claim: str
    measured: str
    verdict: str


def _hot(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty or "endpoint" not in frame:
        return frame
    return frame[(frame["status"] == "ok") & (frame["endpoint"] == HOT)]


def _us(ms: float) -> str:
    return f"{ms * 1000:.0f} µs" if ms >= 0.001 else f"{ms * 1000:.1f} µs"


def _median(frame: pd.DataFrame, column: str) -> float:
    values = frame[column].dropna()
    return float(values.median()) if len(values) else math.nan


def performance(frame: pd.DataFrame) -> Verdict:
    """Sessions pay a lookup per request; JWT pays only crypto: compare the auth step."""
    claim = "Sessions: a DB/cache lookup on every request. JWT: cryptographic verification only."
    hot = _hot(frame)
    sessions = hot[hot["mode"] == "session"]
    jwts = hot[(hot["mode"] == "jwt") & (hot["revocation"] == "none")]
    if sessions.empty or jwts.empty or hot["auth_p50_ms"].dropna().empty:
        return Verdict("Performance", claim, "needs session and JWT cells with Server-Timing",
                       NOT_MEASURED)
    by_store = {store: _median(g, "auth_p50_ms") for store, g in sessions.groupby("store")}
    by_alg = {alg: _median(g, "auth_p50_ms") for alg, g in jwts.groupby("alg")}
    parts = [f"session in {s}: {_us(v)}" for s, v in sorted(by_store.items())]
    parts += [f"JWT {a}: {_us(v)}" for a, v in sorted(by_alg.items())]
    measured = ("median auth step per request (Server-Timing: wall time under this run's load, "
                "so a store's round trip counts) — " + ", ".join(parts))
    if any(math.isnan(v) for v in [*by_store.values(), *by_alg.values()]):
        return Verdict("Performance", claim, measured,
                       "not measured in this run: some cells carry no Server-Timing")
    cheapest_jwt = min(by_alg.values())
    cheaper_sessions = [s for s, v in by_store.items() if v < cheapest_jwt]
    if not cheaper_sessions:
        return Verdict("Performance", claim, measured, "holds: every session store cost more "
                       "per request than JWT verification")
    if len(cheaper_sessions) == len(by_store):
        return Verdict("Performance", claim, measured,
                       "does not hold: every session lookup measured was cheaper than verifying "
                       "a JWT")
    return Verdict("Performance", claim, measured,
                   f"depends on the store: sessions in {', '.join(sorted(cheaper_sessions))} "
                   "were cheaper than JWT verification, the others were not")


def scalability(frame: pd.DataFrame) -> Verdict:
    """Sessions need a shared store to scale out; JWT scales on any node."""
    claim = "Sessions need a shared session store to scale out; JWT scales on any node."
    hot = _hot(frame)
    multi = hot[hot["nodes"] > 1]
    if multi.empty:
        return Verdict("Scalability", claim, "no cell with more than one node", NOT_MEASURED)
    rows = []
    broken = []
    for (mode, store, balance), group in multi.groupby(["mode", "store", "balance"]):
        rate = _median(group, "error_rate")
        # JWT keeps nothing in a store unless it keeps a blocklist: name the store then.
        label = "JWT" if mode == "jwt" and store == "memory" else \
            f"{'JWT' if mode == 'jwt' else mode} ({store})"
        if balance != "roundrobin":
            label += f", {balance}"
        rows.append(f"{label}: {100 * rate:.1f}% failed on {int(group['nodes'].max())} nodes")
        if rate > 0.01:
            broken.append((mode, store))
    measured = "; ".join(rows)
    memory_broke = any(m == "session" and s == "memory" for m, s in broken)
    others_fine = not [b for b in broken if not (b[0] == "session" and b[1] == "memory")]
    if memory_broke and others_fine:
        return Verdict("Scalability", claim, measured,
                       "holds: per-node memory sessions fail across nodes (unless sticky); "
                       "a shared store and JWT do not")
    if not broken:
        return Verdict("Scalability", claim, measured,
                       "holds for what ran: no multi-node configuration failed")
    return Verdict("Scalability", claim, measured, "does not hold as stated: see the failures")


def revocation(frame: pd.DataFrame, probes: pd.DataFrame | None = None) -> Verdict:
    """Sessions revoke by deleting; JWT needs a blocklist or short expiry.

    With probe watches (analysis.revocation), the lag per strategy decides; without,
    the conformance check's "revoked after logout" and the auth step's cost do.
    """
    claim = "Sessions: easy, delete from the store. JWT: hard, needs a blocklist or short expiry."
    if probes is not None and not probes.empty:
        return _revocation_from_probes(claim, frame, probes)
    cells = frame[(frame["status"] == "ok") & frame["revoked_after_logout"].notna()]
    if cells.empty:
        return Verdict("Revocation", claim, "no verified session or JWT cell", NOT_MEASURED)
    parts = []
    for (mode, revocation_kind), group in cells.groupby(["mode", "revocation"]):
        revoked = bool(group["revoked_after_logout"].iloc[0])
        what = "rejected at once after logout" if revoked else "still accepted after logout"
        suffix = f" + {revocation_kind}" if revocation_kind != "none" else ""
        parts.append(f"{mode}{suffix}: {what}")
    hot = _hot(frame)
    plain = _median(hot[(hot["mode"] == "jwt") & (hot["revocation"] == "none")], "auth_p50_ms")
    listed = _median(hot[(hot["mode"] == "jwt") & (hot["revocation"] == "blocklist")],
                     "auth_p50_ms")
    if not math.isnan(plain) and not math.isnan(listed):
        stores = ", ".join(sorted(set(hot.loc[(hot["mode"] == "jwt")
                                              & (hot["revocation"] == "blocklist"), "store"])))
        parts.append(f"median JWT auth step {_us(plain)} without a blocklist, {_us(listed)} with "
                     f"one in {stores} (wall time under load, incl. the store round trip)")
    measured = "; ".join(parts)
    has_blocklist = bool((cells["revocation"] != "none").any())
    verdict = ("depends on a blocklist: JWT without one stays valid until exp; with one, "
               "revocation is as immediate as deleting a session, at the cost shown"
               if has_blocklist else "holds: JWT without a blocklist kept working after logout")
    return Verdict("Revocation", claim, measured, verdict)


def _revocation_from_probes(claim: str, frame: pd.DataFrame, probes: pd.DataFrame) -> Verdict:
    table = lag_table(probes)
    measured = revocation_summary(probes)
    costs = overhead_table(frame)
    if not costs.empty:
        priced = costs[costs["extra_us"].notna()
                       & ~costs["strategy"].str.startswith("JWT, no blocklist")]
        if len(priced):
            measured += ". Cost of the check at GET /api/me vs JWT without one: " + "; ".join(
                f"{r['strategy']} {r['extra_us']:+.0f} µs auth step, "
                f"{r['rps_ratio']:.2f}x req/s" for _, r in priced.iterrows())
    is_session = table["series"].str.startswith("session")
    is_plain_jwt = table["series"].str.startswith("JWT, no blocklist")
    is_jwt_listed = table["series"].str.startswith("JWT +")
    sessions_ok = bool(is_session.any()) and bool(
        (table.loc[is_session, "accepted_after_logout"] == 0).all())
    plain_leaks = bool(is_plain_jwt.any()) and bool(
        (table.loc[is_plain_jwt, "accepted_after_logout"] > 0).all())
    listed = table[is_jwt_listed]
    immediate = listed[(listed["accepted_after_logout"] == 0) & (listed["not_rejected"] == 0)]
    parts = []
    if is_session.any():
        parts.append("sessions: " + ("holds, nothing accepted after the delete" if sessions_ok
                                     else "does not hold, see the replays accepted"))
    if is_plain_jwt.any():
        parts.append("JWT without revocation: " + ("holds, valid until exp" if plain_leaks
                                                   else "not seen to leak in this run"))
    if len(listed):
        late = listed[~listed.index.isin(immediate.index)]
        if late.empty:
            parts.append("JWT with a blocklist: as immediate as a session delete, at the cost "
                         "shown")
        elif late["series"].str.contains("each node its own").all():
            names = sorted({re.sub(r", (log out everywhere|\d+ nodes|\d+ s tokens)", "",
                                   strategy_of(v)).removeprefix("JWT + ")
                            for v in immediate["series"] if "each node its own" not in v})
            parts.append(f"JWT with a {' / '.join(names) or 'blocklist'}: as immediate as a "
                         "session delete, at the cost shown; a blocklist in one node's memory "
                         "does not reach the other nodes")
        else:
            parts.append(f"JWT with a blocklist: immediate in {len(immediate)} of {len(listed)} "
                         "strategy and node cases, see the lags")
    if not parts:
        return Verdict("Revocation", claim, measured, NOT_MEASURED)
    return Verdict("Revocation", claim, measured, "depends on the strategy: " + "; ".join(parts))


def state_storage(frame: pd.DataFrame) -> list[Verdict]:
    """Server state grows with sessions; JWT keeps none (unless it keeps a blocklist)."""
    claim_state = "Sessions are stateful; JWT is stateless."
    claim_storage = "Sessions live in server memory/Redis/DB; JWTs live on the client."
    hot = _hot(frame)
    scaled = hot[hot["scale"] > 0]
    if scaled.empty:
        return [Verdict("State", claim_state, "no cell seeded live sessions", NOT_MEASURED),
                Verdict("Storage", claim_storage, "no cell seeded live sessions", NOT_MEASURED)]
    parts = []
    for store, group in scaled.groupby("store"):
        curve = group.groupby("scale")["p50_ms"].median().sort_index()
        parts.append(f"{store}: p50 {curve.iloc[0]:.2f} ms at {curve.index[0]:,} sessions, "
                     f"{curve.iloc[-1]:.2f} ms at {curve.index[-1]:,}")
    measured = "; ".join(parts)
    return [Verdict("State", claim_state, measured, "holds: session state grows with users"),
            Verdict("Storage", claim_storage, measured,
                    "holds: see latency and memory against live sessions")]


def transport(frame: pd.DataFrame) -> list[Verdict]:
    """Cookie vs header transport: bytes on the wire per request."""
    cells = frame[(frame["status"] == "ok") & frame["credential_bytes"].notna()]
    cells = cells[cells["mode"] != "none"]
    claim_cross = "Sessions: cross-domain is difficult (cookies are domain-bound). JWT: easy."
    claim_mobile = "Sessions: cookie handling varies by platform. JWT: works everywhere."
    if cells.empty:
        return [Verdict("Cross-Domain", claim_cross, "no credential measured", NOT_MEASURED),
                Verdict("Mobile", claim_mobile, "no credential measured", NOT_MEASURED)]
    sizes = {f"{m} ({a})" if m != "session" else "session cookie": int(g["credential_bytes"].max())
             for (m, a), g in cells.groupby(["mode", "alg"])}
    measured = "credential bytes per request: " + ", ".join(
        f"{k} {v} B" for k, v in sorted(sizes.items(), key=lambda kv: kv[1]))
    return [
        Verdict("Cross-Domain", claim_cross, measured,
                "depends on deployment, not measurable by load: a header token crosses "
                "origins at the price of the bytes shown; cookies need same-site hosting"),
        Verdict("Mobile", claim_mobile, measured,
                "depends on the client: the load generator sent both without trouble"),
    ]


def security(frame: pd.DataFrame) -> Verdict:
    """CSRF risk for cookies, XSS risk for tokens in storage: did every target conform?"""
    claim = "Sessions: CSRF risk (mitigated with tokens). JWT: XSS risk if kept in localStorage."
    checked = frame[frame["verify_passed"].notna()].drop_duplicates("cell")
    if checked.empty:
        return Verdict("Security", claim, "no conformance checks recorded", NOT_MEASURED)
    passed = int(checked["verify_passed"].astype(bool).sum())
    total = len(checked)
    measured = (f"{passed} of {total} verified cells passed the conformance checks "
                "(401 without credential, forged/alg-none/tampered credentials refused, "
                "logout behaviour); cookie-authenticated writes require a CSRF token")
    verdict = ("holds as a risk statement: each mode is safe only with its mitigation, "
               "which every target here enforces" if passed == total
               else "targets failed conformance: their numbers were not measured")
    return Verdict("Security", claim, measured, verdict)


def hybrid(frame: pd.DataFrame) -> Verdict:
    """Short-lived JWT + rotating refresh token: JWT's speed with revocation of the refresh."""
    claim = ("Hybrid (short-lived JWT + refresh token in an httpOnly cookie + blocklist) gives "
             "JWT's scalability with session-like revocation.")
    hot = _hot(frame)
    hybrids = hot[hot["mode"] == "hybrid"]
    # Compare like with like: JWT with the same revocation setting as the hybrid cells.
    jwts = hot[(hot["mode"] == "jwt") & hot["revocation"].isin(set(hybrids["revocation"]))]
    if hybrids.empty:
        return Verdict("Hybrid", claim, "no measured hybrid cell", NOT_MEASURED)
    measured = f"hybrid auth p50 {_us(_median(hybrids, 'auth_p50_ms'))}"
    if not jwts.empty:
        measured += f" vs JWT {_us(_median(jwts, 'auth_p50_ms'))}"
    refresh = frame[(frame["status"] == "ok") & (frame["endpoint"] == "POST /auth/refresh")]
    if not refresh.empty:
        measured += f"; a refresh (rotation) takes p50 {_median(refresh, 'p50_ms'):.2f} ms"
    return Verdict("Hybrid", claim, measured,
                   "holds for the hot path (same verification as JWT); revocation of the access "
                   "token waits for its expiry unless a blocklist is on")


def article_table(frame: pd.DataFrame, probes: pd.DataFrame | None = None) -> list[Verdict]:
    """Every row of the article's table, in its order, plus the hybrid approach."""
    state, storage = state_storage(frame)
    cross, mobile = transport(frame)
    return [state, storage, scalability(frame), revocation(frame, probes), performance(frame),
            cross, security(frame), mobile, hybrid(frame)]
