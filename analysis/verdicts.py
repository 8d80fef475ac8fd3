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

from analysis.costs import Interval, cost_table, interval, median_of
from analysis.endpoints import ME, REFRESH
from analysis.formatting import number
from analysis.revocation import lag_table, revocation_summary, strategy_of
from analysis.revocation_cost import overhead_table

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
    return frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)]


def _versus(one: Interval, other: Interval) -> str:
    """'more', 'less' or 'same': one's interval above, below or overlapping other's."""
    if one.low > other.high:
        return "more"
    if one.high < other.low:
        return "less"
    return "same"


def _cost_text(row: pd.Series) -> str:
    text = f"{interval(row, 'server_cpu_us').text(1)} µs"
    store = interval(row, "store_cpu_us")
    if store.n:
        text += f" (target {interval(row, 'target_cpu_us').text(1)}, store {store.text(1)})"
    return text


def performance(frame: pd.DataFrame, costs: pd.DataFrame | None = None) -> Verdict:
    """Sessions pay a lookup per request; JWT pays only crypto: compare CPU per request,
    each session configuration against the cheapest JWT at the same load."""
    claim = "Sessions: a DB/cache lookup on every request. JWT: cryptographic verification only."
    table = cost_table(frame) if costs is None else costs
    if table.empty:
        return Verdict("Performance", claim, "needs session and JWT cells", NOT_MEASURED)
    parts: list[str] = []
    latency: list[str] = []
    algs: set[str] = set()
    outcome: dict[str, str] = {}  # "<store>" or "<store> at N users": more / less / same
    loads = table.groupby(["users", "nodes", "scenario"], sort=True)
    for (users, nodes_, _scenario), group in loads:
        sessions = group[group["mode"] == "session"]
        jwts = group[(group["mode"] == "jwt") & (group["revocation"] == "none")]
        if sessions.empty or jwts.empty:
            continue
        cheapest = jwts.sort_values("server_cpu_us").iloc[0]
        at = "".join(f" at {value} {name}" for name, value in (("users", users),
                                                               ("nodes", nodes_))
                     if table[name].nunique() > 1)
        parts += [f"session in {r['store']}{at}: {_cost_text(r)}" for _, r in sessions.iterrows()]
        parts += [f"JWT {r['alg']}{at}: {_cost_text(r)}" for _, r in jwts.iterrows()]
        lookups = [f"{r['store']} {number(r['store_rtt_us'], 0)} µs"
                   for _, r in sessions.iterrows() if not math.isnan(r["store_rtt_us"])]
        algs.add(str(cheapest["alg"]))
        latency.append(f"Latency added per request{at}: JWT {cheapest['alg']} verification "
                       f"{number(float(cheapest['auth_cpu_us']), 0)} µs of CPU"
                       + (f"; one store lookup on an idle store {', '.join(lookups)}"
                          if lookups else ""))
        for _, r in sessions.iterrows():
            outcome[f"{r['store']}{at}"] = _versus(interval(r, "server_cpu_us"),
                                                   interval(cheapest, "server_cpu_us"))
    if not outcome:
        return Verdict("Performance", claim, "needs session and JWT cells at the same load",
                       NOT_MEASURED)
    measured = (f"CPU per request, target + store (median and range over "
                f"{int(table['repeats'].min())} repeats) — " + "; ".join(parts) + ". "
                + ". ".join(latency))
    dearer = sorted(s for s, o in outcome.items() if o == "more")
    cheaper = sorted(s for s, o in outcome.items() if o == "less")
    same = sorted(s for s, o in outcome.items() if o == "same")
    jwt_name = f"verifying a JWT ({algs.pop()})" if len(algs) == 1 else "verifying a JWT"
    if len(dearer) == len(outcome):
        verdict = f"holds: a session lookup in every store cost more per request than {jwt_name}"
    elif len(cheaper) == len(outcome):
        verdict = (f"does not hold: a session lookup in every store cost less per request than "
                   f"{jwt_name}; the crypto is the dearer step")
    elif len(same) == len(outcome):
        verdict = (f"indistinguishable in this run: sessions and {jwt_name} cost the same "
                   "within the spread of the repeats")
    else:
        said = [f"sessions in {', '.join(group)} cost {word} than {jwt_name}"
                for group, word in ((cheaper, "less"), (dearer, "more")) if group]
        if same:
            said.append(f"in {', '.join(same)} the same within the spread")
        verdict = "depends on the store: " + "; ".join(said)
    return Verdict("Performance", claim, measured, verdict)


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
        rate = median_of(group, "error_rate")
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


def revocation(frame: pd.DataFrame, probes: pd.DataFrame | None = None,
               costs: pd.DataFrame | None = None) -> Verdict:
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
    table = cost_table(frame) if costs is None else costs
    if not table.empty:
        plain = table[(table["mode"] == "jwt") & (table["revocation"] == "none")]
        listed = table[(table["mode"] == "jwt") & (table["revocation"] != "none")]
        if len(plain) and len(listed):
            parts.append(f"CPU per request: JWT {_cost_text(plain.iloc[0])} without a "
                         "blocklist; with one: " + "; ".join(
                             f"in {r['store']} {_cost_text(r)}" for _, r in listed.iterrows()))
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
            measured += (". Cost of the check vs JWT without one (CPU per request, target + "
                         "store): " + "; ".join(f"{r['strategy']} {r['extra_us']:+.0f} µs"
                                                for _, r in priced.iterrows()))
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
    settings = sorted({str(s) for s in checked.get("store_settings", pd.Series(dtype=str))
                       if isinstance(s, str) and s})
    if settings:
        measured += "; stores the targets ran on: " + "; ".join(settings)
    verdict = ("holds as a risk statement: each mode is safe only with its mitigation, "
               "which every target here enforces" if passed == total
               else "targets failed conformance: their numbers were not measured")
    evicting = [s for s in settings if "may evict" in s]
    if evicting:
        verdict += ("; but a store that may evict ran (" + "; ".join(evicting) + "): "
                    "an evicted blocklist entry or session counts as lost revocation state")
    return Verdict("Security", claim, measured, verdict)


def hybrid(frame: pd.DataFrame, costs: pd.DataFrame | None = None) -> Verdict:
    """Short-lived JWT + rotating refresh token: JWT's cost with revocation of the refresh."""
    claim = ("Hybrid (short-lived JWT + refresh token in an httpOnly cookie + blocklist) gives "
             "JWT's scalability with session-like revocation.")
    table = cost_table(frame) if costs is None else costs
    hybrids = table[table["mode"] == "hybrid"] if not table.empty else table
    if hybrids.empty:
        return Verdict("Hybrid", claim, "no measured hybrid cell", NOT_MEASURED)
    parts, outcomes = [], []
    for _, row in hybrids.iterrows():
        twins = table[(table["mode"] == "jwt") & (table["alg"] == row["alg"])
                      & (table["revocation"] == row["revocation"])
                      & (table["store"] == row["store"]) & (table["users"] == row["users"])]
        text = f"hybrid {row['alg']} {_cost_text(row)}"
        if len(twins):
            twin = twins.iloc[0]
            text += f" vs JWT {_cost_text(twin)}"
            outcomes.append(_versus(interval(row, "server_cpu_us"),
                                    interval(twin, "server_cpu_us")))
        parts.append(text)
    measured = "CPU per request, target + store: " + "; ".join(parts)
    refresh = frame[(frame["status"] == "ok") & (frame["endpoint"] == REFRESH)]
    if not refresh.empty:
        measured += f"; a refresh (rotation) takes p50 {median_of(refresh, 'p50_ms'):.2f} ms"
    if outcomes and all(o == "same" for o in outcomes):
        cost = "the hot path cost the same as JWT within the spread of the repeats"
    elif outcomes and all(o == "more" for o in outcomes):
        cost = ("the hot path cost more than JWT (its mix adds refresh rotations, which "
                "write to the store)")
    elif outcomes:
        cost = "the hot path's cost against JWT varied: see the figures"
    else:
        cost = "no JWT twin to compare with"
    return Verdict("Hybrid", claim, measured,
                   f"holds for the hot path ({cost}); revocation of the access token waits for "
                   "its expiry unless a blocklist is on")


def availability(faults: pd.DataFrame | None) -> Verdict:
    """Sessions need their store on every request; stateless JWT does not. Decided from the
    faults suite's cells (analysis.faults.fault_table): requests failed, time to recover,
    and revoked credentials accepted again (which must be 0)."""
    claim = ("Sessions depend on their store for every request; a JWT is verified without "
             "one, so it keeps working when the store fails.")
    if faults is None or faults.empty:
        return Verdict("Availability when the store fails", claim, "no cell with a fault",
                       NOT_MEASURED)
    store = faults[faults["fault"] != "node-kill"]
    parts = []
    for label, group in store.groupby("label", sort=True):
        recover = group["recover_s"].max()
        parts.append(f"{label}: {int(group['failed'].sum()):,} failed over "
                     f"{len(group)} fault(s), recovered in "
                     + ("-" if math.isnan(recover) else f"≤ {recover:.1f} s"))
    accepted = int(faults["wrongly_accepted"].sum())
    parts.append(f"revoked credentials accepted again: {accepted}")
    measured = "; ".join(parts)
    if accepted:
        return Verdict("Availability when the store fails", claim, measured,
                       "does not hold safely: a store fault made a revoked credential valid")
    stateless = store[store["label"].str.startswith("JWT, no blocklist")]
    stateful = store[~store["label"].str.startswith("JWT, no blocklist")]
    if stateless.empty or stateful.empty:
        return Verdict("Availability when the store fails", claim, measured,
                       "depends: needs JWT without revocation and a store-backed mode")
    jwt_failed = int(stateless["failed"].sum())
    stateful_failed = int(stateful["failed"].sum())
    if jwt_failed <= 0.01 * max(1, stateful_failed):
        stuck = sorted(set(stateful.loc[stateful["recover_s"].isna(), "label"]))
        recovered = ("and recovered by itself" if not stuck else
                     f"and recovered by itself except {', '.join(stuck)} (not within the window)")
        other = stateful[stateful["other_failed"] > 0]
        not_503 = "" if other.empty else (
            f"; but {int(other['other_failed'].sum()):,} requests failed otherwise than with "
            f"503 (e.g. a 500) in {', '.join(sorted(set(other['label'])))}")
        return Verdict("Availability when the store fails", claim, measured,
                       "holds: JWT without revocation kept serving; the modes that ask the "
                       f"store failed closed (503) while it was down {recovered}; "
                       f"no revoked credential came back{not_503}")
    return Verdict("Availability when the store fails", claim, measured,
                   "does not hold: JWT without revocation failed too")


def article_table(frame: pd.DataFrame, probes: pd.DataFrame | None = None,
                  faults: pd.DataFrame | None = None) -> list[Verdict]:
    """Every row of the article's table, in its order, plus the hybrid approach and
    availability when the store fails (faults: analysis.faults.fault_table)."""
    state, storage = state_storage(frame)
    cross, mobile = transport(frame)
    costs = cost_table(frame)
    return [state, storage, scalability(frame), revocation(frame, probes, costs),
            performance(frame, costs), cross, security(frame), mobile, hybrid(frame, costs),
            availability(faults)]
