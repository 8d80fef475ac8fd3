"""A suite pointed at an API of the user's (`authbench run SUITE --api FILE`): the suite's
load, the adapter's variants.

The suite keeps what it says of load (scenario, users, rates, windows, repeats); the
adapter file says what runs: each variant becomes the configurations the twins were,
measured the same way. What only the twins have is left out with a note: store faults,
a delay line to the store, seeded sessions, the store-ceiling extra (authbench does not
run the API's store). The floor is the adapter's [floor] request, when it has one; a
rate given as a share of the floor's capacity needs it. Every variant whose adapter has
a logout also gets one revocation probe (its own rig, after the windows).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import psutil

from adapters.loading import AdapterFile
from adapters.schema import Adapter, Hot
from authbench.run.cell import Cell
from authbench.run.suite import Suite, SuiteError

FLOOR = "floor"  # the variant name of the floor's configuration
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
PROBE_USERS = 4  # 2 probes (loadtests/revocation.py's default) and 2 background readers
PROBE_SECONDS = 4.0
# What the load shape of a twin cell keeps; everything else is the configuration.
LOAD_KEYS = ("scenario", "users", "spawn_rate", "workers", "duration", "warmup", "rate",
             "logout")


def floor_adapter(api: AdapterFile) -> Adapter | None:
    """The floor as a variant of its own: the [floor] request is its only hot request,
    sent without a credential, so its users never log in."""
    first = api.variants[0]
    if first.floor is None:
        return None
    hot = Hot.model_validate({**first.floor.model_dump(by_alias=True), "credential": False})
    variant = first.variant.model_copy(update={"name": FLOOR, "kind": "none"})
    return first.model_copy(update={"hot": [hot], "variant": variant, "write": None,
                                    "refresh": None})


def variant_adapter(api: AdapterFile, cell: Cell) -> Adapter:
    """The adapter a cell of an API run drives."""
    if cell.api == FLOOR:
        floor = floor_adapter(api)
        if floor is None:
            raise SuiteError(f"{api.path}: the run has a floor cell but the file no [floor]")
        return floor
    return api.variant(cell.api)


def check_hosts(api: AdapterFile, allow_remote: bool) -> None:
    """Loopback only, unless the user takes the responsibility (--allow-remote)."""
    if allow_remote:
        return
    for adapter in api.variants:
        urls = list(adapter.urls) or ([adapter.service.url.replace("{port}", "1")]
                                      if adapter.service else [])
        for url in urls:
            host = urlsplit(url).hostname or ""
            if host not in LOOPBACK_HOSTS and not host.startswith("127."):
                raise SuiteError(f"{api.path}: variant {adapter.variant.name!r}: {url} is not "
                                 "on this machine; load against another host is yours to "
                                 "answer for: add --allow-remote to send it")


def _is_this_machine(host: str) -> bool:
    """The host is one of this machine's (this network namespace's) own addresses."""
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return True
    try:
        wanted = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: it may resolve anywhere, so not counted as here
    return any(address.address.split("%")[0] == str(wanted)
               for addresses in psutil.net_if_addrs().values() for address in addresses)


def node_places(adapter: Adapter) -> list[dict[str, Any]]:
    """Where each node of a variant runs, and whether its CPU is measured there: a node
    authbench starts runs here; one at a url is here only at one of this machine's own
    addresses, and the CPU of a node on another host is never measured (only `pids`,
    which name processes of this machine, are)."""
    if adapter.service is not None:
        return [{"url": adapter.service.url, "host": "this machine", "is_local": True,
                 "is_cpu_measured": True, "cpu": "measured: authbench started it here"}
                for _ in range(adapter.nodes)]
    places = []
    for url in adapter.urls:
        host = urlsplit(url).hostname or ""
        is_local = _is_this_machine(host)
        if adapter.pids:
            cpu = "measured: from the processes named by pids, on this machine"
        elif is_local:
            cpu = "not measured: no process named"
        else:
            cpu = "not measured: on another host"
        places.append({"url": url, "host": host, "is_local": is_local,
                       "is_cpu_measured": bool(adapter.pids), "cpu": cpu})
    return places


def api_suite(suite: Suite, api: AdapterFile) -> tuple[Suite, list[str]]:
    """The suite's load over the adapter's variants, and a note per thing left out."""
    notes: list[str] = []
    nodes = api.variants[0].node_count
    if any(a.node_count != nodes for a in api.variants):
        raise SuiteError(f"{api.path}: every variant needs the same number of nodes")
    if any(c.fault != "none" for c in suite.cells):
        notes.append("store and node faults break what authbench runs; left out for an API")
    if any(c.store_rtt_ms for c in suite.cells):
        notes.append("store_rtt_ms delays a store authbench runs; left out for an API")
    if any(c.scale for c in suite.cells):
        notes.append("seeded sessions (scale) need a store authbench runs; left out for an API")
    has_floor = api.variants[0].floor is not None
    shapes: list[Cell] = []
    for cell in suite.cells:
        if cell.scenario in ("faults", "revocation") or cell.fault != "none":
            continue
        if cell.rate_fraction is not None and not has_floor:
            note = (f"rate {cell.rate} is a share of the floor's capacity, and the adapter has "
                    "no [floor] request: those cells are left out")
            if note not in notes:
                notes.append(note)
            continue
        shape = Cell(**{key: getattr(cell, key) for key in LOAD_KEYS}, nodes=nodes)
        if shape not in shapes:
            shapes.append(shape)
    if not shapes:
        raise SuiteError(f"suite {suite.name}: nothing to run against an API (its cells are "
                         "faults or revocation cells, or need a [floor])")
    cells: list[Cell] = []
    for shape in shapes:
        if has_floor and any(c.mode == "none" for c in suite.cells):
            cells.append(replace(shape, mode="none", api=FLOOR))
        cells += [replace(shape, mode=a.variant.kind, store=a.variant.store, api=a.variant.name)
                  for a in api.variants]
    cells += [Cell(mode=a.variant.kind, store=a.variant.store, api=a.variant.name,
                   scenario="revocation", users=PROBE_USERS, duration=PROBE_SECONDS,
                   warmup=0.5, nodes=nodes)
              for a in api.variants if a.logout is not None]
    if suite.extras:
        notes.append(f"{', '.join(suite.extras)}: measure the twins' stores; left out for an "
                     "API")
    return replace(suite, cells=tuple(dict.fromkeys(cells)), extras=()), notes


def api_metadata(api: AdapterFile) -> dict[str, Any]:
    """What metadata.json keeps of the API a run drove: the file, the variants, and which
    of its requests stand for the report's hot path, floor, login and refresh."""
    first = api.variants[0]
    roles: dict[str, Any] = {"hot": first.hot[0], "floor": first.floor, "login": first.login,
                             "refresh": first.refresh, "write": first.write,
                             "logout": first.logout}
    return {
        "file": str(api.path.resolve()), "name": api.name,
        "variants": [{"name": a.variant.name, "kind": a.variant.kind, "store": a.variant.store,
                      "env": dict(a.variant.env),
                      "cpu_claimed": a.service is not None or bool(a.pids),
                      "node_places": node_places(a),
                      "logout_revokes": a.logout.revokes if a.logout is not None else None}
                     for a in api.variants],
        "endpoints": {role: f"{request.method} {request.path}"
                      for role, request in roles.items() if request is not None},
    }
