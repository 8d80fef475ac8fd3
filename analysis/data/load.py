"""The one loader: a run folder's raw files into a tidy long DataFrame.

`load_run(path)` is the entry point for notebooks. One row per cell and endpoint
("GET /api/me", "POST /auth/login", ...), snake_case columns:

    run_id, cell, key, repeat, status, reason,
    mode, store, alg, revocation, verify_cache, scenario, users, nodes, workers, scale,
    duration, warmup, balance, topology,
    endpoint, requests, failures, rps, error_rate,
    p50_ms, p90_ms, p99_ms, p99_9_ms, max_ms, mean_ms,
    auth_p50_ms, auth_p99_ms, auth_mean_ms,        (Server-Timing auth: wall time)
    auth_cpu_mean_us, auth_cpu_p50_us, store_wall_p50_us,  (Server-Timing auth-cpu, store)
    cpu_ms_per_request, peak_rss_mb, locust_cpu_warnings, measured_seconds,
    planned_seconds,
    target_cpu_us, store_cpu_us, server_cpu_us, generator_cpu_us,  (CPU µs per request,
        every endpoint of the cell counted, over exactly the histograms' window)
    store_rtt_ms, proxy_cpu_us, store_ops_per_request  (the round trip a delay line added
        between targets and store, 0: direct; that line's own CPU µs per request, never
        the target's or the store's; store commands per request, Redis only)
    target_util, generator_util, store_util,        (share of the CPU each could use)
    target_core_busy, bottleneck, is_pinned, is_oversubscribed, store_rtt_us,
    foreign_cpu_share                               (the machine's CPU busy with other work)
    verify_passed, revoked_after_logout, credential_bytes,
    store_settings                                  (what the targets ran on: e.g. "redis
        maxmemory-policy noeviction"; "" without a store or from an older run)
    store_used_memory_delta, store_commands_delta, seed_seconds,
    sign_us                                          (the targets' codec signing, in-process)
    config, rate_spec, rate_offered, rate_achieved, rate_floor_capacity,  (open model:
        the key without its rate, the suite's rate, req/s; NaN for a closed loop)
    schedule_lag_p50_ms, schedule_lag_p99_ms, schedule_lag_max_ms, arrivals_scheduled,
    arrivals_sent, in_flight_limit, in_flight_max, is_generator_short, generator_note,
    service_p50_ms, service_p99_ms   (from the actual send; p*_ms count from the intended)
    api, api_endpoint, cpu_claimed   (an API's variant, its own request name, analysis.data.apis)

Failed cells keep one row with endpoint "" and NaN figures, so a report can say
why they were not measured. `load_timelines` and `load_probes` read the faults and
revocation scenarios' files. Nothing else in the project reads a run's raw files but
analysis.data.hdr, which this module uses for the HDR histograms; every JSON file is refused
unless analysis.data.formats says its "format" is one this analysis reads.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram

from analysis.cost.table import bottleneck
from analysis.data.apis import name_api_endpoints
from analysis.data.conformance import verify_columns
from analysis.data.formats import CELL, PROBE, RUN, TIMELINE, load_json
from analysis.data.hdr import (
    cell_files,
    is_timing,
    load_cell_histograms,
    load_open_blocks,
    measured_bounds,
    percentiles,
    timing,
)
from analysis.data.store_ops import ops_per_request
from analysis.latency.equal_load import OPEN_COLUMNS, open_columns, sum_open_counts
from analysis.revocation.lag import series_label, strategy_label

CELL_COLUMNS = ("mode", "store", "alg", "revocation", "verify_cache", "scenario", "users",
                "nodes", "workers", "scale", "duration", "warmup", "balance")
# Cell keys added later, with the value a run that predates them used.
LATER_CELL_COLUMNS = {"lib": "pyjwt", "logout": "one", "access_ttl": 0, "fault": "none",
                      "store_rtt_ms": 0.0, "api": ""}
TIMELINE_COUNTS = ("ok", "unavailable", "rejected", "failed", "wrongly_accepted")
PROBE_COLUMNS = ["cell", "trial", "key", "repeat", "mode", "store", "revocation", "nodes",
                 "logout", "access_ttl", "strategy", "series", "credential", "node",
                 "login_node", "accepted_before", "rejected_after_ms", "accepted_after_logout",
                 "replays", "errors", "observed_s", "expires_in_s", "leeway_s", "is_complete",
                 "interval_ms", "before_status"]
DEFAULT_LEEWAY_S = 2.0  # the targets' JWT_LEEWAY default: a token lives until exp + leeway
_REPEAT = re.compile(r"-r(\d+)$")
_RATE = re.compile(r"-at[0-9.e+]+(?:pct(?:dearest)?)?$")


def cell_folders(run: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each cell folder of a run that has its cell.json, with that record, in run order."""
    cells = run / "cells"
    for folder in sorted(cells.iterdir()) if cells.is_dir() else []:
        record = folder / "cell.json"
        if folder.is_dir() and not folder.name.startswith(".") and record.exists():
            yield folder, load_json(record, CELL)


def config_of(key: str) -> str:
    """A cell key without its rate: the configuration, whatever load it was offered."""
    return _RATE.sub("", key)


def key_and_repeat(name: str) -> tuple[str, int]:
    """A cell folder's configuration and repeat: "003-jwt-memory-r2" -> ("jwt-memory", 2)."""
    match = _REPEAT.search(name)
    return _REPEAT.sub("", name.split("-", 1)[1]), int(match.group(1)) if match else 1


def locust_row(path: Path, name: str) -> dict[str, str] | None:
    """The row of a Locust stats CSV for one request name (or "Aggregated")."""
    if not path.exists():
        return None
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == name:
                return row
    return None


def load_metadata(run: Path) -> dict[str, Any]:
    """The run's metadata.json."""
    return load_json(run / "metadata.json", RUN)


def cpu_between(timeline: list[list[float]], start: float, end: float) -> float:
    """CPU seconds a node spent from start to end, interpolated in its sampled timeline
    (cumulative seconds at Unix times; clamped to the sampled span)."""
    times = [point[0] for point in timeline]
    cpu = [point[1] for point in timeline]
    return float(np.interp(end, times, cpu) - np.interp(start, times, cpu))


def cpu_ms_per_request(folder: Path, nodes: list[dict[str, Any]],
                       bounds: tuple[float, float] | None, requests: int) -> float:
    """Server CPU per request, both counted over the window the histograms cover.

    Runs recorded before nodes kept a CPU timeline fall back to CPU from the end of the
    warm-up to Locust's exit over Locust's own request count (a longer window for CPU
    than for requests: biased upward).
    """
    cpu = _timeline_cpu(nodes, bounds) if bounds is not None else math.nan
    if not math.isnan(cpu):
        return cpu * 1000 / requests if requests else math.nan
    total = locust_row(folder / "locust_stats.csv", "Aggregated")
    total_requests = int(total["Request Count"]) if total else 0
    cpu_seconds = sum(node["cpu_seconds"] for node in nodes)
    return cpu_seconds * 1000 / total_requests if total_requests else math.nan


def window_requests(histograms: dict[str, HdrHistogram], failures: dict[str, int]) -> int:
    """Every request the window measured, over all endpoints, failed ones included."""
    counted = sum(int(h.get_total_count()) for name, h in histograms.items()
                  if not is_timing(name))
    return counted + sum(count for name, count in failures.items() if not is_timing(name))


def _timeline_cpu(series: list[dict[str, Any]], bounds: tuple[float, float]) -> float:
    timelines = [s.get("cpu_timeline") or [] for s in series]
    if not timelines or not all(len(t) >= 2 for t in timelines):
        return float("nan")
    return sum(cpu_between(t, *bounds) for t in timelines)


def usage_columns(record: dict[str, Any], bounds: tuple[float, float] | None, requests: int,
                  cpu_count: int, hostname: str = "") -> dict[str, Any]:
    """CPU per request of target, store and generator; utilisation; the bottleneck
    (hostname: the run's machine, whose busy CPUs a worker elsewhere did not use)."""
    nan = float("nan")
    placement = record.get("placement") or {}
    cell = record["cell"]
    target_cpus = len(placement.get("target_cpus") or []) or cpu_count
    generator_cpus = len(placement.get("generator_cpus") or []) or cpu_count
    out: dict[str, Any] = {"is_pinned": bool(placement.get("is_pinned", False)),
                           "is_oversubscribed": int(cell.get("nodes", 1)) > target_cpus,
                           "store_rtt_us": record.get("store_rtt_us", nan)}
    if bounds is None or not requests:
        return {**out, "target_util": nan, "generator_util": nan, "store_util": nan,
                "store_cpu_us": nan, "generator_cpu_us": nan, "target_core_busy": nan,
                "proxy_cpu_us": nan, "foreign_cpu_share": nan, "bottleneck": "unknown"}
    seconds = bounds[1] - bounds[0]
    nodes = record.get("nodes", [])
    target_cpu = _timeline_cpu(nodes, bounds)
    generator = record.get("generator", [])
    generator_cpu = _timeline_cpu(generator, bounds) if generator else nan
    store = record.get("store_cpu") or {}
    store_cpu = _timeline_cpu([store], bounds) if store else nan
    proxies = record.get("proxy") or []
    proxy_cpu = _timeline_cpu(proxies, bounds) if proxies else nan
    out["proxy_cpu_us"] = proxy_cpu * 1e6 / requests
    store_capacity = 1 if store.get("kind") == "redis" else cpu_count
    recording = max(1, int(cell.get("workers", 0)))
    # Per node, not per process: a node may be a tree (an API's gunicorn and its worker).
    out["target_util"] = target_cpu / seconds / min(int(cell.get("nodes", 1)) or 1, target_cpus)
    out["generator_util"] = generator_cpu / seconds / min(recording, generator_cpus)
    out["store_util"] = store_cpu / seconds / store_capacity
    out["store_cpu_us"] = store_cpu * 1e6 / requests  # NaN: no shared store
    out["generator_cpu_us"] = generator_cpu * 1e6 / requests
    busy = record.get("cpu_busy") or []
    cpus = [c for c in placement.get("target_cpus") or [] if c < len(busy)]
    out["target_core_busy"] = float(np.mean([busy[c] for c in cpus])) if cpus else nan
    # Busy CPU that none of the measured processes here used: other processes, and the
    # kernel's network work (a few % on loopback). Much more means a disturbed window.
    here = [g for g in generator if not g.get("is_reported") or g.get("host") == hostname]
    local_generator = _timeline_cpu(here, bounds) if here else nan
    own = target_cpu + sum(0.0 if math.isnan(cpu) else cpu
                           for cpu in (local_generator, store_cpu, proxy_cpu))
    out["foreign_cpu_share"] = ((sum(busy) * seconds - own) / (len(busy) * seconds)
                                if busy else nan)
    out["bottleneck"] = bottleneck(out["target_util"], out["generator_util"], out["store_util"],
                                   out["target_core_busy"] if out["is_pinned"] else nan)
    return out


def _cell_rows(run_id: str, folder: Path, record: dict[str, Any],
               cpu_count: int = 1, hostname: str = "") -> list[dict[str, Any]]:
    cell = record["cell"]
    key, repeat = key_and_repeat(folder.name)
    base: dict[str, Any] = {
        "run_id": run_id,
        "cell": folder.name,
        "key": key,
        "repeat": repeat,
        "status": record["status"],
        "reason": record.get("reason", ""),
        **{column: cell.get(column) for column in CELL_COLUMNS},
        **{column: cell.get(column, default) for column, default in LATER_CELL_COLUMNS.items()},
        "topology": record.get("topology", {}).get("kind", ""),
        "locust_cpu_warnings": record.get("locust", {}).get("cpu_warnings", 0),
        **verify_columns(record.get("verify", [])),
        "store_used_memory_delta": record.get("store", {}).get("used_memory_delta"),
        "store_commands_delta": record.get("store", {}).get("total_commands_processed_delta"),
        "seed_seconds": record.get("seed_seconds"),
        "sign_us": record.get("sign_us", float("nan")),
        "config": config_of(key),
        "rate_spec": cell.get("rate", ""),
        "cpu_claimed": (record.get("api") or {}).get("cpu_claimed", True),
    }
    if record["status"] != "ok":
        return [{**base, "endpoint": ""}]
    files = cell_files(folder)  # read once for the three readers below
    histograms, failures = load_cell_histograms(folder, files)
    bounds = measured_bounds(folder, files)
    window = bounds[1] - bounds[0] if bounds is not None else float("nan")
    nodes = record.get("nodes", [])
    requests = window_requests(histograms, failures)
    base["cpu_ms_per_request"] = cpu_ms_per_request(folder, nodes, bounds, requests)
    base["target_cpu_us"] = base["cpu_ms_per_request"] * 1000
    base["measured_seconds"] = window
    base["planned_seconds"] = record.get("window", {}).get("planned_seconds", cell["duration"])
    base["peak_rss_mb"] = max((n["peak_rss_bytes"] for n in nodes), default=0) / 2**20
    base.update(usage_columns(record, bounds, requests, cpu_count, hostname))
    base["store_ops_per_request"] = ops_per_request(
        (record.get("store_cpu") or {}).get("commands_delta"), requests)
    base.update(open_columns(record, sum_open_counts(load_open_blocks(folder, files)), histograms,
                             requests, window, base))
    base["server_cpu_us"] = base["target_cpu_us"] + (
        0.0 if math.isnan(base["store_cpu_us"]) else base["store_cpu_us"])
    rows = []
    # Endpoints whose every request failed have no histogram, only a failure count.
    for endpoint in sorted(set(histograms) | set(failures)):
        if is_timing(endpoint):
            continue
        histogram = histograms.get(endpoint)
        answered = histogram.get_total_count() if histogram is not None else 0
        failed = failures.get(endpoint, 0)
        auth = percentiles(histograms.get(timing("auth", endpoint)))
        auth_cpu = percentiles(histograms.get(timing("auth-cpu", endpoint)), "us")
        store_wall = percentiles(histograms.get(timing("store", endpoint)), "us")
        service = percentiles(histograms.get(timing("service", endpoint)))
        rows.append({
            **base,
            "endpoint": endpoint,
            "requests": answered,
            "failures": failed,
            "rps": answered / window if window > 0 else float("nan"),
            "error_rate": failed / (answered + failed) if answered + failed else float("nan"),
            **percentiles(histogram),
            "auth_p50_ms": auth["p50_ms"], "auth_p99_ms": auth["p99_ms"],
            "auth_mean_ms": auth["mean_ms"],
            "auth_cpu_mean_us": auth_cpu["mean_us"], "auth_cpu_p50_us": auth_cpu["p50_us"],
            "store_wall_p50_us": store_wall["p50_us"],
            "service_p50_ms": service["p50_ms"], "service_p99_ms": service["p99_ms"],
        })
    return rows or [{**base, "endpoint": ""}]


def load_run(path: str | Path) -> pd.DataFrame:
    """Every finished cell of a run as a tidy DataFrame (see the module docstring)."""
    run = Path(path)
    metadata = load_metadata(run)
    machine = metadata.get("machine", {})
    cpu_count = int(machine.get("cpu_count") or 1)
    hostname = str(machine.get("hostname") or "")
    rows: list[dict[str, Any]] = []
    for folder, record in cell_folders(run):
        rows += _cell_rows(metadata["run_id"], folder, record, cpu_count, hostname)
    frame = pd.DataFrame(rows)
    for column in ("auth_p50_ms", "auth_p99_ms", "auth_mean_ms", "rps", "p50_ms", "p99_ms",
                   "cpu_ms_per_request", "target_cpu_us", "store_cpu_us", "server_cpu_us",
                   "generator_cpu_us", "auth_cpu_mean_us", "auth_cpu_p50_us",
                   "store_wall_p50_us", "target_util", "generator_util", "store_util",
                   "foreign_cpu_share", "store_rtt_us", "proxy_cpu_us", "store_ops_per_request",
                   "planned_seconds", "measured_seconds",
                   *OPEN_COLUMNS, "service_p50_ms", "service_p99_ms"):
        if column not in frame:
            frame[column] = float("nan")
    frame["is_generator_short"] = frame.get(
        "is_generator_short", pd.Series(False, index=frame.index)).fillna(False).astype(bool)
    return name_api_endpoints(frame, metadata)


def load_timelines(path: str | Path) -> pd.DataFrame:
    """Requests second by second in every finished cell that recorded them
    (loadtests/timeline.py), one row per cell and second:

        cell, key, repeat, mode, store, revocation, nodes, fault,
        second (from the window's measured start), ok, unavailable, rejected, failed,
        wrongly_accepted, requests, p50_ms, p99_ms, max_ms,
        fault_started_s, fault_ended_s, fault_error   (seconds from the measured start)

    Counts add up over Locust processes; the per-second percentiles are those of the
    slowest process (one process per cell unless `workers` is set).
    """
    run = Path(path)
    rows: list[dict[str, Any]] = []
    for folder, record in cell_folders(run):
        files = sorted(folder.glob("timeline-*.json"))
        if not files or record.get("status") != "ok":
            continue
        cell = record["cell"]
        start = float(record.get("window", {}).get("measure_from", math.nan))
        fault = record.get("fault") or {}
        key, repeat = key_and_repeat(folder.name)
        base = {"cell": folder.name, "key": key, "repeat": repeat,
                **{c: cell.get(c) for c in ("mode", "store", "revocation", "nodes")},
                "fault": cell.get("fault", "none"),
                "fault_started_s": float(fault.get("started", math.nan)) - start,
                "fault_ended_s": float(fault.get("ended", math.nan)) - start,
                "fault_error": fault.get("error", "")}
        seconds: dict[int, dict[str, Any]] = {}
        for file in files:
            for entry in load_json(file, TIMELINE)["seconds"]:
                row = seconds.setdefault(int(entry["second"]), {
                    **base, "second": int(entry["second"]),
                    **dict.fromkeys(TIMELINE_COUNTS, 0),
                    "p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan})
                for count in TIMELINE_COUNTS:
                    row[count] += int(entry.get(count, 0))
                for column in ("p50_ms", "p99_ms", "max_ms"):
                    row[column] = float(np.fmax(row[column], float(entry[column])))
        rows += [seconds[s] for s in sorted(seconds)]
    frame = pd.DataFrame(rows, columns=[
        "cell", "key", "repeat", "mode", "store", "revocation", "nodes", "fault", "second",
        *TIMELINE_COUNTS, "p50_ms", "p99_ms", "max_ms", "fault_started_s", "fault_ended_s",
        "fault_error"])
    frame["requests"] = frame[list(TIMELINE_COUNTS)].sum(axis=1)
    return frame


def load_probes(path: str | Path) -> pd.DataFrame:
    """One row per trial, node and credential of every finished cell's revocation probes
    (loadtests/revocation.py's probe-*.json), columns PROBE_COLUMNS; strategy and series
    are analysis.revocation.lag's labels."""
    rows: list[dict[str, Any]] = []
    for folder, record in cell_folders(Path(path)):
        if record.get("status") != "ok":
            continue
        cell = record["cell"]
        key, repeat = key_and_repeat(folder.name)
        leeway = float(record.get("target_env", {}).get("JWT_LEEWAY", DEFAULT_LEEWAY_S))
        strategy = strategy_label(cell)
        nodes = int(cell.get("nodes") or 1)
        for file in sorted(folder.glob("probe-*.json")):
            for trial in load_json(file, PROBE)["trials"]:
                for watch in trial["watches"]:
                    is_login_node = watch["node"] == trial["login_node"]
                    rejected = watch["rejected_after_s"]
                    rows.append({
                        "cell": folder.name,
                        "trial": f"{folder.name}/{file.name}/{trial['probe']}/{trial['number']}",
                        "key": key, "repeat": repeat, "mode": cell.get("mode"),
                        "store": cell.get("store"), "revocation": cell.get("revocation"),
                        "nodes": nodes, "logout": cell.get("logout", "one"),
                        "access_ttl": cell.get("access_ttl", 0), "strategy": strategy,
                        "series": series_label(strategy, watch["credential"], nodes,
                                               is_login_node),
                        "credential": watch["credential"], "node": watch["node"],
                        "login_node": trial["login_node"],
                        "accepted_before": watch["accepted_before"],
                        "rejected_after_ms": None if rejected is None else rejected * 1000,
                        "accepted_after_logout": watch["accepted_after_logout"],
                        "replays": watch["replays"], "errors": watch["errors"],
                        "observed_s": trial["observed_s"], "expires_in_s": trial["expires_in_s"],
                        "leeway_s": leeway, "is_complete": trial["is_complete"],
                        "interval_ms": trial["interval_s"] * 1000,
                        "before_status": watch.get("before_status"),
                    })
    frame = pd.DataFrame(rows, columns=PROBE_COLUMNS)
    frame["rejected_after_ms"] = frame["rejected_after_ms"].astype(float)
    return frame
