"""The report's account of an API of the user's (authbench run --api): what ran, under
which names, and which of the article's rows this run measured.

The article's table is answered from the same figures as for the twins, but an API
can be measured only from outside: latency, throughput and credential bytes from the
load and the conformance check, revocation from its probes, and cost only from the CPU
of processes its adapter named. What only the twins can vary is said to be absent.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from analysis.data.apis import ROLES, api_facts
from analysis.verdict.table import Verdict

ROLE_WORDS = {"hot": "the hot path", "floor": "the floor, sent without a credential",
              "login": "login", "refresh": "refresh"}


def _measured_logout(frame: pd.DataFrame, variant: str) -> str:
    """What the conformance check saw after logout, over the variant's cells."""
    cells = frame[(frame["api"] == variant) & frame["revoked_after_logout"].notna()]
    if cells.empty:
        return "-"
    seen = set(cells["revoked_after_logout"].astype(bool))
    if seen == {True}:
        return "rejected"
    if seen == {False}:
        return "still accepted"
    return "differed between nodes or cells"


def api_lines(metadata: dict[str, Any], frame: pd.DataFrame) -> list[str]:
    """Markdown lines for an API run; none for a run of the twins."""
    api = api_facts(metadata)
    if api is None:
        return []
    variants = api.get("variants", [])
    lines = [f"This run drove {api.get('name', 'an API')} (`{api.get('file', '?')}`), an "
             f"API authbench did not write, not its twin targets: {len(variants)} variant(s), "
             "each a configuration below (`api-<variant>-...`).", "",
             "| variant | kind | started with | logout, as declared | after logout, as "
             "checked | server CPU |", "|---|---|---|---|---|---|"]
    for variant in variants:
        env = " ".join(f"{k}={v}" for k, v in variant.get("env", {}).items()) or "-"
        declared = {True: "revokes", False: "not declared to revoke", None: "no logout"}[
            variant.get("logout_revokes")]
        remote = sorted({str(place.get("host")) for place in variant.get("node_places", [])
                         if not place.get("is_local", True)})
        cpu = ("the processes its command started" if variant.get("cpu_claimed")
               else f"not measured: on another host ({', '.join(remote)})" if remote
               else "not claimed (no process named)")
        lines.append(f"| {variant['name']} | {variant['kind']} | {env} | {declared} | "
                     f"{_measured_logout(frame, variant['name'])} | {cpu} |")
    endpoints = api.get("endpoints", {})
    names = [f"{ROLES[role]} stands for {endpoints[role]} ({ROLE_WORDS[role]})"
             for role in ROLES if role in endpoints]
    lines += ["", "The report names the API's requests as it names the twins': "
              + "; ".join(names) + "."]
    claimed = all(v.get("cpu_claimed") for v in variants)
    lines += ["", "Measured here: latency and throughput from the load; credential bytes and "
              "what logout does from the conformance check; how long a logged-out credential "
              "keeps working from each variant's revocation probe (it trusts no status code: "
              "a logout that answers 2xx and leaves the credential working is reported as "
              "such); " + ("cost per request from the CPU of the service's own processes."
                           if claimed else "no cost per request and no bottleneck where the "
                           "adapter names no process (give `pids`, or a [service] command)."),
              "", "Not measured for an API: what only the twins let authbench vary (store faults, "
              "a delay line to the store, seeded sessions, the store's ceiling), so the rows "
              "that rest on them say so.", ""]
    return lines


def remote_hosts(metadata: dict[str, Any]) -> list[str]:
    """The hosts other than this machine that an API run's nodes ran on (node_places)."""
    api = api_facts(metadata) or {}
    return sorted({str(place.get("host")) for variant in api.get("variants", [])
                   for place in variant.get("node_places", []) if not place.get("is_local", True)})


def with_remote_nodes(verdict: Verdict, metadata: dict[str, Any]) -> Verdict:
    """The Scalability row of a run whose nodes ran on other hosts says which was measured
    there: the requests and their failures, not the nodes' CPU."""
    hosts = remote_hosts(metadata)
    if not hosts:
        return verdict
    said = (f"Nodes ran on other hosts ({', '.join(hosts)}): their requests and failures "
            "were measured from here, their CPU was not (no cost per node, so no scale-out "
            "prediction from it).")
    return replace(verdict, measured=f"{verdict.measured} {said}".strip())
