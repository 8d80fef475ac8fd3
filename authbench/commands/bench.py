"""`authbench micro` and the `bench-*` commands: standalone benchmarks outside a suite.

Each handler turns its flags into the benchmark's config, runs it (authbench/bench/)
and prints what it found. analysis (pandas, matplotlib) is imported inside the
handlers that write a report, so `authbench serve`, started once per target, does not
load it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authbench.bench.clientbench import compare as compare_redis_clients
from authbench.bench.h2load import require_h2load
from authbench.bench.micro import ALGORITHMS, GROUPS, format_results, run_micro, write_micro_json
from authbench.bench.overload.measure import MODES, OverloadConfig, run_bench_overload
from authbench.bench.overload.measure import RESULT_FILE as OVERLOAD_FILE
from authbench.bench.overload.render import format_markdown as format_overload
from authbench.bench.revocation.measure import run_revocation_bench
from authbench.bench.revocation.render import format_result as format_revocation
from authbench.bench.revocation.result import STORES, RevocationBenchConfig, write_revocation_json
from authbench.bench.storeceiling.measure import run_store_ceiling
from authbench.bench.storeceiling.render import format_result as format_store_ceiling
from authbench.bench.storeceiling.result import STORES as CEILING_STORES
from authbench.bench.storeceiling.result import (
    StoreCeilingConfig,
    StoreCeilingError,
    write_store_ceiling_json,
)
from authbench.bench.storeceiling.tools import ToolMissing, require_tools
from authbench.bench.targetbench import CONFIGS, TargetBenchConfig, run_bench_targets
from authbench.bench.targetbench import RESULT_FILE as TARGETS_FILE
from authbench.bench.targetbench import format_markdown as format_targets
from authbench.bench.wrk import require_wrk
from authbench.infra.services import available_services
from targets.settings import DEFAULT_STORE_URLS

NOT_A_RUN = "{folder}: not an authbench run (no metadata.json); leave out --into for a new folder"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _output_folder(args: argparse.Namespace, suffix: str) -> Path | None:
    """The --into folder when it is a run, else a new one; None when --into is not a run."""
    if args.into:
        folder = Path(args.into)
        return folder if (folder / "metadata.json").is_file() else None
    return Path(args.results) / f"{_stamp()}-{suffix}"


def _write_report(folder: Path) -> Path:
    from analysis.report.writer import write_report  # pandas and matplotlib: see the docstring

    return write_report(folder)["html"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be above 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text}: must be above 0")
    return value


def cmd_micro(args: argparse.Namespace) -> int:
    """In-process sign/verify and store costs, pyperf-style; results saved as JSON."""
    folder = _output_folder(args, "micro")
    if folder is None:
        print(f"authbench micro: {NOT_A_RUN.format(folder=args.into)}", file=sys.stderr)
        return 2
    services = available_services(args.redis_url, args.postgres_url)
    socket_path = args.redis_socket if args.redis_socket and Path(args.redis_socket).exists() \
        else None
    config = {
        "groups": args.groups, "algorithms": args.algorithms or [], "min_time": args.min_time,
        "samples": args.samples, "processes": args.processes,
        "redis_url": args.redis_url if "redis" in services else None,
        "postgres_url": args.postgres_url if "postgres" in services else None,
        "redis_socket": socket_path,
    }
    print(f"micro: {len(args.groups)} groups x {args.processes} processes x {args.samples} "
          f"samples (min {args.min_time * 1000:.0f} ms each)", file=sys.stderr)
    started = datetime.now(UTC)
    results = run_micro(config)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_micro_json(folder, config, started, results)
    print("\n".join(format_results(results)))
    if not config["redis_url"] or not config["postgres_url"] or not socket_path:
        print("note: stores not measured: " + ", ".join(
            name for name, on in (("redis", config["redis_url"]),
                                  ("postgres", config["postgres_url"]),
                                  ("redis unix socket", socket_path)) if not on))
    print(f"results: {path}; report: {_write_report(folder)}")
    return 0


def cmd_bench_locust(args: argparse.Namespace) -> int:
    """Compare Locust's and wrk's maximum req/s on /noauth at the same connections."""
    # Reads Locust's CSV with analysis.data.load (pandas): see the docstring.
    from authbench.bench.locust import compare_with_wrk, format_ratios

    require_wrk()  # before any process starts
    results = compare_with_wrk(args.connections, args.seconds, args.rounds, args.workers)
    print("\n".join(format_ratios(results, args.workers)))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2))
    return 0


def cmd_bench_targets(args: argparse.Namespace) -> int:
    """Measure /noauth vs /api/me per configuration with wrk, interleaved over rounds."""
    config = TargetBenchConfig(only=tuple(args.only or ()), seconds=args.seconds,
                               warmup=args.warmup, rounds=args.rounds,
                               connections=args.connections, pin=not args.no_pin)
    require_wrk()  # before any target starts or a folder is made
    folder = Path(args.results) / f"bench-targets-{_stamp()}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = run_bench_targets(config, folder)
    print("\n".join(format_targets(rows)))
    print(f"raw figures: {folder / TARGETS_FILE}")
    return 0 if all(r.meets_bar is not False for r in rows) else 1


def cmd_bench_redis_clients(args: argparse.Namespace) -> int:
    """Measure the CPU one GET costs through each Redis client, in this process."""
    import uvloop  # here, not above: uvloop is not installed on Windows

    results = uvloop.run(compare_redis_clients(args.url, args.concurrency, args.batches,
                                               args.rounds))
    for name, values in results.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:<9} CPU µs per GET ({args.concurrency} concurrent): {shown}")
    return 0


def cmd_bench_revocation(args: argparse.Namespace) -> int:
    """Blocklist storage growth and steady state, and the cost of logging out everywhere."""
    folder = _output_folder(args, "revocation")
    if folder is None:
        print(f"authbench bench-revocation: {NOT_A_RUN.format(folder=args.into)}",
              file=sys.stderr)
        return 2
    config = RevocationBenchConfig(
        stores=tuple(args.stores), redis_url=args.redis_url, postgres_url=args.postgres_url,
        max_entries=args.max_entries, checkpoints=tuple(args.checkpoints),
        logout_rate=args.logout_rate, token_ttl=args.token_ttl,
        steady_seconds=args.steady_seconds, k=tuple(args.k), reps=args.reps,
    )
    result = run_revocation_bench(config, lambda line: print(line, file=sys.stderr, flush=True))
    folder.mkdir(parents=True, exist_ok=True)
    path = write_revocation_json(folder, result)
    print("\n".join(format_revocation(result)))
    print(f"results: {path}; report: {_write_report(folder)}")
    return 0


def cmd_bench_overload(args: argparse.Namespace) -> int:
    """Drive each mode at 3x its capacity open-loop, then time its recovery."""
    config = OverloadConfig(
        only=tuple(args.only or ()), seconds=args.seconds, factor=args.factor,
        capacity_seconds=args.capacity_seconds, connections=args.connections,
        max_concurrency=args.max_concurrency, clients=args.clients,
        recovery_factor=args.recovery_factor, watch=args.watch, pin=not args.no_pin)
    require_wrk()  # capacity; both before any target starts or a folder is made
    require_h2load()  # the overload itself
    outcome = run_bench_overload(config, Path(args.results))
    print("\n".join(format_overload(outcome.rows, {**outcome.skipped, **outcome.failed})))
    print(f"raw figures: {outcome.folder / OVERLOAD_FILE}")
    return 0 if outcome.is_ok else 1


def cmd_bench_store(args: argparse.Namespace) -> int:
    """The shared store's ceiling: each mode's store operations at saturation, store alone."""
    name = "authbench bench-store"
    stores = tuple(dict.fromkeys(args.stores))
    config = StoreCeilingConfig(
        stores=stores, redis_url=args.redis_url, postgres_url=args.postgres_url,
        seconds=args.seconds, repeats=args.repeats, keys=args.keys).with_clients(args.clients)
    if args.into and not (Path(args.into) / "metadata.json").is_file():
        print(f"{name}: {NOT_A_RUN.format(folder=args.into)}", file=sys.stderr)
        return 2
    try:
        require_tools(stores)  # before any server starts or a folder is made
        result = run_store_ceiling(config, lambda line: print(line, file=sys.stderr,
                                                              flush=True))
    except (ToolMissing, StoreCeilingError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    folder = Path(args.into) if args.into else Path(args.results) / f"bench-store-{_stamp()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_store_ceiling_json(folder, result)
    print("\n".join(format_store_ceiling(result)))
    print(f"results: {path}")
    return 0


def _store_list(text: str) -> list[str]:
    """'redis,postgres' -> ['redis', 'postgres'], each one checked."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    wrong = [name for name in names if name not in CEILING_STORES]
    if wrong or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: choose from {', '.join(CEILING_STORES)}, comma-separated")
    return names


def _add_micro(sub: Any) -> None:
    parser = sub.add_parser("micro", help=cmd_micro.__doc__, description=cmd_micro.__doc__)
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS)
    parser.add_argument("--algorithms", nargs="+", choices=[a[0] for a in ALGORITHMS])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.02,
                        help="seconds one sample must last at least (loops are calibrated)")
    parser.add_argument("--redis-url", default=DEFAULT_STORE_URLS["redis"])
    parser.add_argument("--redis-socket", default="/run/redis/redis-server.sock")
    parser.add_argument("--postgres-url", default=DEFAULT_STORE_URLS["postgres"])
    parser.add_argument("--results", default="results")
    parser.add_argument("--into", metavar="RUN",
                        help="write micro.json into this run folder, so its report shows it")
    parser.set_defaults(handler=cmd_micro)


def _add_bench_locust(sub: Any) -> None:
    parser = sub.add_parser("bench-locust", help=cmd_bench_locust.__doc__,
                            description=cmd_bench_locust.__doc__)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="Locust worker counts to try (0: one local process)")
    parser.add_argument("--output", help="also write the figures as JSON here")
    parser.set_defaults(handler=cmd_bench_locust)


def _add_bench_targets(sub: Any) -> None:
    defaults = TargetBenchConfig()
    parser = sub.add_parser("bench-targets", help=cmd_bench_targets.__doc__,
                            description=cmd_bench_targets.__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS))
    parser.add_argument("--seconds", type=int, default=defaults.seconds)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--results", default="results")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the target and wrk share every CPU (default: disjoint CPUs)")
    parser.set_defaults(handler=cmd_bench_targets)


def _add_bench_redis_clients(sub: Any) -> None:
    parser = sub.add_parser("bench-redis-clients", help=cmd_bench_redis_clients.__doc__,
                            description=cmd_bench_redis_clients.__doc__)
    parser.add_argument("--url", default=DEFAULT_STORE_URLS["redis"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.set_defaults(handler=cmd_bench_redis_clients)


def _add_bench_revocation(sub: Any) -> None:
    defaults = RevocationBenchConfig()
    parser = sub.add_parser("bench-revocation", help=cmd_bench_revocation.__doc__,
                            description=cmd_bench_revocation.__doc__)
    parser.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES))
    parser.add_argument("--redis-url", default=defaults.redis_url)
    parser.add_argument("--postgres-url", default=defaults.postgres_url)
    parser.add_argument("--max-entries", type=_positive_int, default=defaults.max_entries)
    parser.add_argument("--checkpoints", nargs="+", type=_positive_int,
                        default=list(defaults.checkpoints),
                        help="blocklist sizes to measure at (capped at --max-entries)")
    parser.add_argument("--logout-rate", type=_positive_float, default=defaults.logout_rate,
                        help="steady state: logouts per second")
    parser.add_argument("--token-ttl", type=_positive_float, default=defaults.token_ttl,
                        help="steady state: access token lifetime T, seconds")
    parser.add_argument("--steady-seconds", type=_positive_float,
                        help="steady state duration (default 3 x --token-ttl)")
    parser.add_argument("--k", nargs="+", type=_positive_int, default=list(defaults.k),
                        help="sessions per user for logout-all")
    parser.add_argument("--reps", type=_positive_int,
                        help="repetitions per k (default 20 for k <= 100, 5 above)")
    parser.add_argument("--results", default="results")
    parser.add_argument("--into", metavar="RUN",
                        help="write revocation.json into this run folder (it has metadata.json)")
    parser.set_defaults(handler=cmd_bench_revocation)


def _add_bench_overload(sub: Any) -> None:
    defaults = OverloadConfig()
    parser = sub.add_parser("bench-overload", help=cmd_bench_overload.__doc__,
                            description=cmd_bench_overload.__doc__)
    parser.add_argument("--only", nargs="*", choices=list(MODES))
    parser.add_argument("--seconds", type=int, default=defaults.seconds,
                        help="overload duration")
    parser.add_argument("--factor", type=float, default=defaults.factor,
                        help="offered load / capacity")
    parser.add_argument("--capacity-seconds", type=int, default=defaults.capacity_seconds)
    parser.add_argument("--connections", type=int, default=defaults.connections,
                        help="wrk's, for capacity")
    parser.add_argument("--max-concurrency", type=int,
                        help="the targets' MAX_CONCURRENCY (default: the targets' default)")
    parser.add_argument("--clients", type=int,
                        help="h2load connections (default: 3 x MAX_CONCURRENCY, at least 64)")
    parser.add_argument("--recovery-factor", type=float, default=defaults.recovery_factor,
                        help="recovered: latency back within this x the baseline")
    parser.add_argument("--watch", type=float, default=defaults.watch,
                        help="seconds to probe after the load at most")
    parser.add_argument("--results", default="results")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the target and the generators share every CPU")
    parser.set_defaults(handler=cmd_bench_overload)


def _add_bench_store(sub: Any) -> None:
    defaults = StoreCeilingConfig()
    parser = sub.add_parser("bench-store", help=cmd_bench_store.__doc__,
                            description=cmd_bench_store.__doc__)
    parser.add_argument("--stores", type=_store_list, default=list(defaults.stores),
                        metavar="STORE[,STORE]",
                        help="redis, postgres or both (default: both); a store that does "
                             "not answer at its URL is left out")
    parser.add_argument("--seconds", type=_positive_float, default=defaults.seconds,
                        help="seconds one repeat of one operation lasts")
    parser.add_argument("--repeats", type=_positive_int, default=defaults.repeats)
    parser.add_argument("--clients", type=_positive_int,
                        help="connections driving each store (default: redis "
                             f"{defaults.redis_clients}, postgres {defaults.postgres_clients})")
    parser.add_argument("--keys", type=_positive_int, default=defaults.keys,
                        help="live sessions, and blocklist entries, loaded first")
    parser.add_argument("--redis-url", default=defaults.redis_url,
                        help="must answer; the figures come from a private redis-server")
    parser.add_argument("--postgres-url", default=defaults.postgres_url)
    parser.add_argument("--results", default="results")
    parser.add_argument("--into", metavar="RUN",
                        help="write store-ceiling.json into this run folder (it has "
                             "metadata.json)")
    parser.set_defaults(handler=cmd_bench_store)


def add_parsers(sub: Any) -> None:
    """Register micro and every bench-* command."""
    _add_micro(sub)
    _add_bench_locust(sub)
    _add_bench_targets(sub)
    _add_bench_redis_clients(sub)
    _add_bench_revocation(sub)
    _add_bench_overload(sub)
    _add_bench_store(sub)
