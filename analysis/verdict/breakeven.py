"""When the answer changes: where each of the article's answers would flip, from one run.

Each point comes with its basis and the figures it rests on; where the run did not
measure what a point needs, it names the run that would. Here the two that rest on
latency and CPU (the store's ceiling's two are in analysis.verdict.breakeven_store):

- distance: the store round trip from which a session's lookup adds more latency than a
  JWT verify; measured (p50 at equal offered load against the round trip), or computed
  (the lookup's idle round trip against the JWT auth step's CPU).
- algorithm: the cheapest algorithm whose verify costs more CPU than a store lookup,
  from the micro tier (micro.json) and among the algorithms the cells ran.

Pure functions of the tidy frame and micro.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.cost.micro import load_micro
from analysis.cost.table import Interval, hot_rows
from analysis.data.endpoints import ME
from analysis.report.formatting import number
from analysis.store.distance import break_even_rtt, family_of, label_of
from analysis.store.scaleout_data import SHARED_STORES

DISTANCE = "a session's lookup adds more latency than a JWT verify"
NODES = "one store caps sessions"
ALGORITHM = "verifying a JWT costs more CPU than a store lookup"
BLOCKLIST = "a blocklist's store becomes the bottleneck"
QUESTIONS = (DISTANCE, NODES, ALGORITHM, BLOCKLIST)
OFFBOX = "`authbench run offbox` measures p50 with the store 0 to 2 ms away"
MICRO = "`authbench micro --into <run>` measures every algorithm's verify and a store lookup"
REDIS_RUN = "`authbench run quick` with Redis up"
MICRO_LIB = "pyjwt"  # the targets' default JWT library
NOT_COST = ("revocation", "faults")  # scenarios whose windows measure lag or a fault


@dataclass(frozen=True)
class BreakEven:
    """What flips, where (value in unit; None: not reached, or not measured), on which basis,
    on which figures; not is_measured: the run lacks what it needs, rests_on names a run."""

    question: str
    subject: str
    point: str
    basis: str
    rests_on: tuple[str, ...]
    value: float | None = None
    unit: str = ""
    is_measured: bool = True



def _share(spec: str) -> str:
    """What a rate spec is a share of: '40%dearest' -> '40 % of the dearest configuration's
    capacity', '50%' -> '50 % of the floor's capacity', '500' -> 'a fixed rate'."""
    if spec.endswith("%dearest"):
        return f"{spec.split('%')[0]} % of the dearest configuration's capacity"
    if spec.endswith("%"):
        return f"{spec[:-1]} % of the floor's capacity"
    return "a fixed rate"

def missing(question: str, subject: str, needs: str) -> BreakEven:
    """A point this run cannot give, and the run that would."""
    return BreakEven(question, subject, "not measured in this run", "-", (needs,),
                     is_measured=False)


def _direct(hot: pd.DataFrame) -> pd.DataFrame:
    """Windows of one node, the store direct (no delay line), measuring cost."""
    rtt = hot["store_rtt_ms"].fillna(0) if "store_rtt_ms" in hot else 0
    return hot if hot.empty else hot[(hot["nodes"] == 1) & (rtt == 0)
                                     & ~hot["scenario"].isin(NOT_COST)]


def cost_windows(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The windows CPU figures come from, and their name: closed-loop ones where the run
    has them (as the answer's cost), else those under a fixed rate."""
    hot = _direct(hot_rows(frame))
    if not hot.empty:
        return hot, "closed-loop windows"
    return _direct(hot_rows(frame, is_open=True)), "windows at a fixed rate"


def _controls(hot: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """JWT without revocation (no store call on the hot path), by algorithm and library."""
    if hot.empty:
        return {}
    jwt = hot[(hot["mode"] == "jwt") & (hot["revocation"] == "none")]
    libs = jwt["lib"] if "lib" in jwt else pd.Series(MICRO_LIB, index=jwt.index)
    return {f"JWT {alg}" + ("" if lib == MICRO_LIB else f" ({lib})"): group
            for (alg, lib), group in jwt.groupby([jwt["alg"], libs])}


def shared_sessions(hot: pd.DataFrame, by: str = "store") -> dict[str, pd.DataFrame]:
    """Sessions in a shared store (Redis, PostgreSQL), by store (or by configuration)."""
    if hot.empty:
        return {}
    shared = hot[(hot["mode"] == "session") & hot["store"].isin(SHARED_STORES)]
    return {label_of(group.iloc[0]): group for _, group in shared.groupby(by)}


def distance_idle(frame: pd.DataFrame) -> list[BreakEven]:
    """The lookup's idle round trip against the JWT auth step's CPU: the distance added to
    this run's store from which one request alone waits longer for its session than it
    spends verifying its JWT."""
    hot, windows = cost_windows(frame)
    out = []
    for session, group in shared_sessions(hot).items():
        rtt = Interval.of(group["store_rtt_us"])
        for jwt, control in _controls(hot).items():
            verify = Interval.of(control["auth_cpu_mean_us"])
            if not rtt.n or not verify.n:
                continue
            added = verify.median - rtt.median
            once = number(rtt.median, 1) if rtt.low == rtt.high else rtt.text(1)
            over = "median and range over " if verify.n > 1 else ""
            spread = "" if verify.low == verify.high else (
                f" ({number(max(0.0, verify.low - rtt.median), 0)} to "
                f"{number(verify.high - rtt.median, 0)} over the verify's range)")
            point = (f"already on this run's store: its idle lookup ({number(rtt.median, 1)} "
                     "µs) takes longer than the verify" if added <= 0 else
                     f"a store {number(added, 0)} µs further away than this run's{spread}: "
                     f"a lookup round trip of {number(verify.median, 0)} µs")
            out.append(BreakEven(
                DISTANCE, f"{session} vs {jwt}", point,
                "one request alone, computed: the lookup's round trip on an idle store "
                "against the JWT auth step's CPU (a verify waits for nothing)",
                (f"{jwt}'s auth step: {verify.text(1)} µs CPU per request ({over}"
                 f"{verify.n} {windows.removesuffix('s') if verify.n == 1 else windows})",
                 f"{session}'s lookup on an idle store: {once} µs round trip, timed "
                 "by the node before its windows"),
                max(0.0, added), "µs"))
    return out


def _open_windows(frame: pd.DataFrame) -> pd.DataFrame:
    """The hot endpoint's windows under a fixed rate that the generator delivered."""
    if frame.empty or not {"rate_offered", "endpoint", "p50_ms"} <= set(frame):
        return frame.iloc[0:0]
    hot = frame[(frame["status"] == "ok") & (frame["endpoint"] == ME)
                & frame["rate_offered"].notna()]
    if "is_generator_short" in hot:
        hot = hot[~hot["is_generator_short"].astype("boolean").fillna(False)]
    rtt = hot["store_rtt_ms"].fillna(0.0) if "store_rtt_ms" in hot else 0.0
    return hot.assign(store_rtt_ms=rtt, family=[family_of(str(c)) for c in hot["config"]])


def _waited(group: pd.DataFrame) -> list[str]:
    """What a session's lookup took at the run's load, direct: it waits behind others."""
    direct = group[group["store_rtt_ms"] == 0]
    wall = Interval.of(direct["store_wall_p50_us"]) if "store_wall_p50_us" in direct \
        else Interval.of([])
    return [f"its lookup at this load, store direct: {wall.text(0)} µs p50 (wall time, "
            "waiting behind other requests included)"] if wall.n else []


def _measured_point(at: float | None, rtts: list[float]) -> tuple[str, float | None]:
    if at is None:
        if len(rtts) == 1:
            return f"not reached with {rtts[0]:g} ms added, the only distance measured", None
        return f"not reached up to {max(rtts):g} ms added, the largest measured", None
    if at == rtts[0]:
        return ("already with the store direct (0 ms added)" if at == 0 else
                f"already at {at:g} ms added, the smallest measured"), at
    return f"about {at:.2f} ms added (between the round trips measured)", at


def distance_measured(frame: pd.DataFrame) -> list[BreakEven]:
    """p50 at equal offered load: the added round trip from which a session's p50 stays
    above the JWT control's (interpolated between the round trips measured)."""
    hot = _open_windows(frame)
    out = []
    for (spec, users, nodes), load in hot.groupby(["rate_spec", "users", "nodes"]):
        rate = number(float(load["rate_offered"].median()), 0)
        for session, group in shared_sessions(load, by="family").items():
            points = {float(r): Interval.of(g["p50_ms"])
                      for r, g in group.groupby("store_rtt_ms", sort=True)}
            rtts = sorted(points)
            for jwt, control_rows in _controls(load).items():
                control = Interval.of(control_rows["p50_ms"])
                at = break_even_rtt([(r, points[r].median) for r in rtts], control.median)
                point, value = _measured_point(at, rtts)
                first = next((r for r in rtts if at is not None and r >= at), None)
                if first is not None:
                    point += ("; their ranges are apart there" if points[first].low >
                              control.high else "; their ranges overlap there: this run "
                              "cannot tell them apart")
                out.append(BreakEven(
                    DISTANCE, f"{session} vs {jwt}", point,
                    f"measured: p50 at equal offered load ({rate} req/s, {_share(spec)}, "
                    f"open model; {users} users, {nodes} node"
                    f"{'s' if nodes != 1 else ''})",
                    (f"{jwt} (no store call) p50: {control.text(2)} ms over {control.n} "
                     "windows",
                     *(f"{session} p50 with {r:g} ms added: {points[r].text(2)} ms"
                       for r in rtts), *_waited(group)), value, "ms"))
                if len(rtts) == 1 and value is None:
                    out.append(missing(DISTANCE, f"{session} against {jwt} with the store "
                                       "further away", OFFBOX))
    return out


def distance(frame: pd.DataFrame) -> list[BreakEven]:
    """Both bases where the run has them; the run that would measure it otherwise."""
    found = distance_measured(frame) + distance_idle(frame)
    return found or [missing(DISTANCE, "a session in a shared store against JWT",
                             f"{REDIS_RUN} times the lookup's idle round trip; {OFFBOX}")]


def _crossing(costs: list[tuple[str, float]], lookup: float) -> tuple[str, float | None, int]:
    """The cheapest of costs (ascending) above lookup, in words, its cost and its index."""
    above = next((i for i, (_, cost) in enumerate(costs) if cost > lookup), None)
    than = f"against the lookup's {number(lookup, 1)} µs"
    if above is None:
        name, cost = costs[-1]
        if len(costs) == 1:
            return f"not {name}, the only one measured ({number(cost, 1)} µs {than})", None, 1
        return (f"none of the {len(costs)} measured: the dearest, {name}, costs "
                f"{number(cost, 1)} µs {than}"), None, len(costs)
    name, cost = costs[above]
    if above == 0:
        only = "the only one measured" if len(costs) == 1 else "the cheapest measured"
        return f"{name} already ({number(cost, 1)} µs {than}), {only}", cost, 0
    below, under = costs[above - 1]
    return (f"{name} ({number(cost, 1)} µs {than}); {below} ({number(under, 1)} µs) costs "
            "less"), cost, above


def algorithm_micro(micro: pd.DataFrame) -> list[BreakEven]:
    """The micro tier: each algorithm's in-process verify against each shared store's get
    (one at a time on loopback: its wall time bounds the lookup's CPU from above)."""
    suffix = f" {MICRO_LIB} verify"
    jwt = micro[(micro["group"] == "jwt") & micro["name"].str.endswith(suffix)]
    gets = micro[(micro["group"] == "store") & micro["name"].str.endswith(" get")
                 & ~micro["name"].str.startswith("memory")]
    if jwt.empty or gets.empty:
        lacks = ("an algorithm's verify in the micro tier (it ran none)" if jwt.empty else
                 "a store lookup in the micro tier (it reached no shared store)")
        return [missing(ALGORITHM, lacks, MICRO)]
    verifies = sorted(((str(n).removesuffix(suffix), float(m), float(s)) for n, m, s in
                       zip(jwt["name"], jwt["median_us"], jwt["stdev_us"], strict=True)),
                      key=lambda v: v[1])
    out = []
    for _, get in gets.iterrows():
        lookup, spread = float(get["median_us"]), float(get["stdev_us"])
        point, value, at = _crossing([(n, m) for n, m, _ in verifies], lookup)
        near = [n for n, m, s in verifies[max(0, at - 1):at + 1] if abs(m - lookup) <
                max(s, spread)]
        if near:
            point += f"; within a standard deviation of the lookup: {', '.join(near)}"
        out.append(BreakEven(
            ALGORITHM, f"{get['name']} vs {MICRO_LIB} verify", point,
            "the micro tier, in-process medians: a verify is computation alone; a get is "
            "timed one at a time on loopback (the client's, the kernel's and the store's "
            "work and the waits between: at most the lookup's CPU)",
            (f"{get['name']}: {lookup:.1f} ± {spread:.1f} µs",
             f"{MICRO_LIB} verify, µs: " + ", ".join(f"{n} {m:.1f} ± {s:.1f}"
                                                    for n, m, s in verifies)), value, "µs"))
    return out


def algorithm_cells(frame: pd.DataFrame) -> list[BreakEven]:
    """The cells: each JWT configuration's auth step CPU against a session's auth step
    (the store call's client side included) plus its store's CPU per request."""
    hot, windows = cost_windows(frame)
    verifies = sorted(((n, Interval.of(c["auth_cpu_mean_us"])) for n, c in
                       _controls(hot).items()), key=lambda v: v[1].median)
    verifies = [(n, v) for n, v in verifies if v.n]
    out = []
    for session, group in shared_sessions(hot).items():
        lookup = Interval.of(group["auth_cpu_mean_us"] + group["store_cpu_us"])
        if not lookup.n or not verifies:
            continue
        point, value, _ = _crossing([(n, v.median) for n, v in verifies], lookup.median)
        near = [n for n, v in verifies if v.overlaps(lookup)]
        if near:
            point += f"; ranges overlap the lookup's: {', '.join(near)}"
        out.append(BreakEven(
            ALGORITHM, f"{session} vs the JWT configurations this run ran", point,
            f"the cells' CPU per request ({windows}): each JWT auth step against a session's "
            "auth step plus its store's CPU",
            (f"{session}: auth step {Interval.of(group['auth_cpu_mean_us']).text(1)} µs on "
             f"the target + the store's {Interval.of(group['store_cpu_us']).text(1)} µs = "
             f"{lookup.text(1)} µs",
             "JWT auth step CPU per request, µs: "
             + ", ".join(f"{n} {v.text(1)}" for n, v in verifies)),
            value, "µs"))
    return out


def algorithm(frame: pd.DataFrame, run: Path | None) -> list[BreakEven]:
    """The micro tier's crossing (or the command that measures it), then the cells'."""
    path = run / "micro.json" if run is not None else None
    micro = algorithm_micro(load_micro(path)[1]) if path is not None and path.is_file() \
        else [missing(ALGORITHM, "each algorithm's verify against a store lookup, "
                                  "in-process", MICRO)]
    return micro + algorithm_cells(frame)
