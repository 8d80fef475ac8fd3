"""The article's head-to-head table, re-derived from a run: claim, measurement, verdict.

Pure functions of the tidy DataFrame. A verdict is "holds", "does not hold",
"depends on ..." or "not measured in this run"; the measured text always carries
the numbers it rests on, each with its range over repeats where it has repeats.
The State, Storage, Cross-Domain and Mobile rows are analysis.store.state's (what is
stored, and what each request carries), Availability is analysis.verdict.availability', and
analysis.report.data.article_table puts the table together.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from analysis.cost.table import Interval, cost_table, interval, median_of
from analysis.data.endpoints import ME, REFRESH
from analysis.report.formatting import number
from analysis.revocation.lag import lag_table, revocation_summary, strategy_label, strategy_of

NOT_MEASURED = "not measured in this run"
FAILING = 0.01  # share of failed requests above which a configuration did not serve


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


def _serving(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Cost rows of plain reads (when the run has any: probes and faults add traffic of
    their own) without seeded sessions (when the run has any unseeded), whose configuration
    served its requests: where more than 1 % failed (per-node memory sessions on several
    nodes), a cost per request is not the cost of serving."""
    if table.empty or "scenario" not in table:
        return table
    if (table["scenario"] == "read").any():
        table = table[table["scenario"] == "read"]
    if "scale" in table and (table["scale"].fillna(0) == 0).any():  # seeds are State's figures
        table = table[table["scale"].fillna(0) == 0]
    return table[~table["key"].astype(str).isin(_failing(frame))]


def _failing(frame: pd.DataFrame) -> dict[str, float]:
    """Configurations more than FAILING of whose requests failed, with that share."""
    hot = _hot(frame)
    if hot.empty or "error_rate" not in hot:
        return {}
    shares = {str(key): median_of(group, "error_rate") for key, group in hot.groupby("key")}
    return {key: share for key, share in shares.items() if share > FAILING}


def performance(frame: pd.DataFrame, costs: pd.DataFrame | None = None) -> Verdict:
    """Sessions pay a lookup per request; JWT pays only crypto: compare CPU per request,
    each session configuration against the cheapest JWT at the same load."""
    claim = "Sessions: a DB/cache lookup on every request. JWT: cryptographic verification only."
    table = _serving(frame, cost_table(frame) if costs is None else costs)
    if table.empty:
        return Verdict("Performance", claim, "needs session and JWT cells", NOT_MEASURED)
    parts: list[str] = []
    latency: list[str] = []
    algs: set[str] = set()
    outcome: dict[str, str] = {}  # "<store>" or "<store> at N users": more / less / same
    cited: dict[str, str] = {}  # the same: its cost against the JWT's, with their ranges
    loads = table.groupby(["users", "nodes", "scenario"], sort=True)
    for (users, nodes_, _scenario), group in loads:
        sessions = group[group["mode"] == "session"]
        jwts = group[(group["mode"] == "jwt") & (group["revocation"] == "none")]
        if sessions.empty or jwts.empty:
            continue
        cheapest = jwts.sort_values("server_cpu_us").iloc[0]
        at = "".join(f" at {value} {name if value != 1 else name[:-1]}"
                     for name, value in (("users", users), ("nodes", nodes_))
                     if table[name].nunique() > 1)  # "at 1 node", "at 2 nodes"
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
            cited[f"{r['store']}{at}"] = (f"{interval(r, 'server_cpu_us').text(1)} against "
                                          f"{interval(cheapest, 'server_cpu_us').text(1)} µs")
    if not outcome:
        return Verdict("Performance", claim, "needs session and JWT cells at the same load",
                       NOT_MEASURED)
    measured = (f"CPU per request, target + store (median and range over "
                f"{int(table['repeats'].min())} repeats) — " + "; ".join(parts) + ". "
                + ". ".join(latency))
    failing = _failing(frame)
    if failing:
        measured += (". Left out, their requests failed: " + ", ".join(
            f"{key} ({100 * share:.0f} %)" for key, share in sorted(failing.items())) + ".")
    dearer = sorted(s for s, o in outcome.items() if o == "more")
    cheaper = sorted(s for s, o in outcome.items() if o == "less")
    same = sorted(s for s, o in outcome.items() if o == "same")
    jwt_name = f"verifying a JWT ({algs.pop()})" if len(algs) == 1 else "verifying a JWT"
    def figures(stores: list[str]) -> str:
        return "CPU per request: " + "; ".join(f"{store} {cited[store]}" for store in stores)

    if len(dearer) == len(outcome):
        verdict = (f"holds: a session lookup in every store cost more per request than "
                   f"{jwt_name} ({figures(dearer)})")
    elif len(cheaper) == len(outcome):
        verdict = (f"does not hold: a session lookup in every store cost less per request than "
                   f"{jwt_name} ({figures(cheaper)}); the crypto is the dearer step")
    elif len(same) == len(outcome):
        verdict = (f"indistinguishable in this run: sessions and {jwt_name} cost the same "
                   f"within the spread of the repeats ({figures(same)})")
    else:
        said = [f"sessions in {', '.join(group)} cost {word} than {jwt_name} ({figures(group)})"
                for group, word in ((cheaper, "less"), (dearer, "more")) if group]
        if same:
            said.append(f"in {', '.join(same)} the same within the spread ({figures(same)})")
        verdict = "depends on the store: " + "; ".join(said)
    return Verdict("Performance", claim, measured, verdict)


def scalability(frame: pd.DataFrame) -> Verdict:
    """Sessions need a shared store to scale out; JWT scales on any node. Measured: the
    share of requests that failed on more than one node (range over repeats)."""
    claim = "Sessions need a shared session store to scale out; JWT scales on any node."
    hot = _hot(frame)
    multi = hot[hot["nodes"] > 1]
    if "scenario" in multi and (multi["scenario"] == "read").any():  # probes, faults fail
        multi = multi[multi["scenario"] == "read"]
    if multi.empty:
        return Verdict("Scalability", claim, "no cell with more than one node", NOT_MEASURED)
    rows = []
    broken = []
    shares: dict[tuple[str, str], str] = {}  # (mode, store) -> failed share, with its range
    for (mode, store, balance), group in multi.groupby(["mode", "store", "balance"]):
        rate = median_of(group, "error_rate")
        # JWT keeps nothing in a store unless it keeps a blocklist: name the store then.
        label = "JWT" if mode == "jwt" and store == "memory" else \
            f"{'JWT' if mode == 'jwt' else mode} ({store})"
        if balance != "roundrobin":
            label += f", {balance}"
        share = Interval.of(group["error_rate"])
        spread = share.low != share.high
        shown = f"{share.text(1, 100) if spread else number(100 * share.median)}%"
        shares[(str(mode), str(store))] = f"{label} {shown}"
        rows.append(f"{label}: {shown} failed on {int(group['nodes'].max())} nodes"
                    + (f" in each of {share.n} repeats" if share.n > 1 and not spread else ""))
        if rate > FAILING:
            broken.append((mode, store))
    measured = "Measured: " + "; ".join(rows)
    memory_broke = any(m == "session" and s == "memory" for m, s in broken)
    others_fine = not [b for b in broken if not (b[0] == "session" and b[1] == "memory")]
    failed = "; ".join(text for key, text in shares.items() if key in broken)
    served = "; ".join(text for key, text in shares.items() if key not in broken)
    if memory_broke and others_fine:
        return Verdict("Scalability", claim, measured,
                       f"holds: per-node memory sessions fail across nodes ({failed} of "
                       "requests failed; unless sticky); a shared store and JWT do not"
                       + (f" ({served})" if served else ": none ran on several nodes"))
    if not broken:
        return Verdict("Scalability", claim, measured,
                       f"holds for what ran: no multi-node configuration failed ({served})")
    return Verdict("Scalability", claim, measured,
                   f"does not hold as stated: {failed} of requests failed")


def revocation(frame: pd.DataFrame, probes: pd.DataFrame | None = None,
               costs: pd.DataFrame | None = None) -> Verdict:
    """Sessions revoke by deleting; JWT needs a blocklist or short expiry.

    With probe watches (analysis.revocation.lag), the lag per strategy decides; without,
    the conformance check's "revoked after logout" and the auth step's cost do.
    """
    claim = "Sessions: easy, delete from the store. JWT: hard, needs a blocklist or short expiry."
    if probes is not None and not probes.empty:
        return _revocation_from_probes(claim, probes, cost_table(frame) if costs is None
                                       else costs)
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
    cost = _check_cited(table) if not table.empty else ""
    verdict = ("depends on a blocklist: JWT without one stays valid until exp; with one, "
               f"revocation is as immediate as deleting a session, at {cost or 'the cost shown'}"
               if has_blocklist else "holds: JWT without a blocklist kept working after logout")
    return Verdict("Revocation", claim, measured, verdict)


def _check_pairs(costs: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    """(JWT with revocation, JWT without) cost rows at the same scenario, users and nodes
    (read cells first: no probe traffic)."""
    if costs.empty:
        return []
    jwt = costs[costs["mode"] == "jwt"]
    if (jwt["scenario"] == "read").any():
        jwt = jwt[jwt["scenario"] == "read"]
    pairs = []
    for _, group in jwt.groupby(["scenario", "users", "nodes"]):
        plain = group[group["revocation"] == "none"]
        if not plain.empty:
            pairs += [(r, plain.iloc[0]) for _, r in group[group["revocation"] != "none"]
                      .iterrows()]
    return pairs


def _check_label(row: pd.Series) -> str:
    return strategy_label(row.to_dict()).removeprefix("JWT ")


def check_cost_text(costs: pd.DataFrame) -> str:
    """What the revocation check costs: JWT with each kind of revocation against JWT without."""
    pairs = _check_pairs(costs)
    if not pairs:
        return ""
    said = [f"JWT without one {_cost_text(base)}; {_check_label(r)} {_cost_text(r)} "
            f"({r['server_cpu_us'] - base['server_cpu_us']:+.0f})" for r, base in pairs]
    return (f"Cost of the check, CPU per request (target + store; median and range over "
            f"{min(int(r['repeats']) for r, _ in pairs)} repeats): " + ". ".join(said))


def _check_cited(costs: pd.DataFrame) -> str:
    """The check's cost for a verdict: '+100 µs per request for the blocklist in redis (300.5
    (274.4 to 358.1) against 200.0 (189.0 to 221.8) µs)' per kind."""
    return "; ".join(
        f"{r['server_cpu_us'] - base['server_cpu_us']:+.0f} µs per request for the "
        f"{_check_label(r).removeprefix('+ ')} ({interval(r, 'server_cpu_us').text(1)} against "
        f"{interval(base, 'server_cpu_us').text(1)} µs)" for r, base in _check_pairs(costs))


def _revocation_from_probes(claim: str, probes: pd.DataFrame, costs: pd.DataFrame) -> Verdict:
    table = lag_table(probes)
    measured = "Lag per strategy: " + revocation_summary(probes)
    priced = check_cost_text(costs)
    if priced:
        measured += f". {priced}"
    is_session = table["series"].str.startswith("session")
    is_plain_jwt = table["series"].str.startswith("JWT, no blocklist")
    is_jwt_listed = table["series"].str.startswith("JWT +")
    sessions_ok = bool(is_session.any()) and bool(
        (table.loc[is_session, "accepted_after_logout"] == 0).all())
    plain_leaks = bool(is_plain_jwt.any()) and bool(
        (table.loc[is_plain_jwt, "accepted_after_logout"] > 0).all())
    listed = table[is_jwt_listed]
    immediate = listed[(listed["accepted_after_logout"] == 0) & (listed["not_rejected"] == 0)]
    sessions = table[is_session]
    plain = table[is_plain_jwt]
    cost = _check_cited(costs)
    parts = []
    if is_session.any():
        parts.append("sessions: " + (
            f"holds, nothing accepted after the delete (every node rejected the first replay, "
            f"<= {number(float(sessions['max_ms'].max()), 1)} ms after the logout's answer)"
            if sessions_ok else "does not hold, see the replays accepted"))
    if is_plain_jwt.any():
        parts.append("JWT without revocation: " + (
            f"holds, valid until exp ({int(plain['accepted_after_logout'].sum()):,} replays "
            f"accepted after logout; bound ~{number(float(plain['bound_s'].max()), 0)} s)"
            if plain_leaks else "not seen to leak in this run"))
    if len(listed):
        late = listed[~listed.index.isin(immediate.index)]
        if late.empty:
            parts.append(f"JWT with a blocklist: as immediate as a session delete (<= "
                         f"{number(float(listed['max_ms'].max()), 1)} ms)"
                         + (f", at {cost}" if cost else ", at the cost shown"))
        elif late["series"].str.contains("each node its own").all():
            names = sorted({re.sub(r", (log out everywhere|\d+ nodes|\d+ s tokens)", "",
                                   strategy_of(v)).removeprefix("JWT + ")
                            for v in immediate["series"] if "each node its own" not in v})
            parts.append(f"JWT with a {' / '.join(names) or 'blocklist'}: as immediate as a "
                         f"session delete, at {cost or 'the cost shown'}; a blocklist in one "
                         "node's memory does not reach the other nodes")
        else:
            parts.append(f"JWT with a blocklist: immediate in {len(immediate)} of {len(listed)} "
                         "strategy and node cases, see the lags")
    if not parts:
        return Verdict("Revocation", claim, measured, NOT_MEASURED)
    return Verdict("Revocation", claim, measured, "depends on the strategy: " + "; ".join(parts))


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
               f"which every target here enforces ({passed} of {total} cells passed)"
               if passed == total
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
    table = _serving(frame, cost_table(frame) if costs is None else costs)
    hybrids = table[table["mode"] == "hybrid"] if not table.empty else table
    if hybrids.empty:
        return Verdict("Hybrid", claim, "no measured hybrid cell", NOT_MEASURED)
    parts, outcomes, cited = [], [], []
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
            cited.append(f"{interval(row, 'server_cpu_us').text(1)} against "
                         f"{interval(twin, 'server_cpu_us').text(1)} µs per request")
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
    figures = f": {'; '.join(cited)}" if cited else ""
    return Verdict("Hybrid", claim, measured,
                   f"holds for the hot path ({cost}{figures}); revocation of the access token "
                   "waits for its expiry unless a blocklist is on")
