"""`authbench run` and what reads its results: report, compare, recommend, list.

analysis (pandas, matplotlib), and the runner that uses it, are imported inside the
handlers: loading them takes about a second, and `authbench serve`, which shares this
command line, is started once per target. analysis.data.formats, which loads neither, comes
in at the top through authbench.run.rundir.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.loading import AdapterError, load_adapter
from authbench.bench.revocation.measure import storage_extra
from authbench.bench.storeceiling.measure import store_ceiling_extra
from authbench.bench.storeceiling.result import STORES, StoreCeilingConfig
from authbench.infra.children import StopOnSignals
from authbench.infra.haproxy import haproxy_path
from authbench.infra.services import available_services
from authbench.run.cell import Cell
from authbench.run.rundir import RunDir, list_runs
from authbench.run.suite import Suite, SuiteError, apply_only, builtin_suites, load_suite
from targets.settings import DEFAULT_STORE_URLS


def planned_suite(run: RunDir) -> Suite:
    """The suite a run planned: its cells as recorded in metadata.json, not as the suite
    file expands today (--only, or services that answer now but did not then, would change
    the plan and so the cell folder names, and finished cells would run again)."""
    planned = run.metadata()["suite"]
    suite = load_suite(str(run.path / "suite.toml"))
    return replace(suite, repeats=planned["repeats"], skipped=(),
                   cells=tuple(Cell(**cell) for cell in planned["cells"]))


def cmd_run(args: argparse.Namespace) -> int:
    """Run a suite (quick by default, article, another shipped one, or a .toml file) into
    results/."""
    from analysis.data.load import load_run  # these three: see the module's docstring
    from analysis.report.summary import format_answer, format_summary, summarize_run
    from analysis.report.writer import write_report
    from authbench.run.runner import RunInterrupted, RunOptions, restore_options, run_suite

    options = RunOptions(results=Path(args.results), redis_url=args.redis_url,
                         postgres_url=args.postgres_url, external_workers=args.external_workers,
                         master_bind_host=args.master_bind_host,
                         master_bind_port=args.master_bind_port,
                         use_haproxy=not args.no_haproxy, pin=not args.no_pin,
                         extras={"revocation-storage": storage_extra()})
    resume = None
    if args.resume:
        try:
            resume = RunDir.open(Path(args.resume))
        except FileNotFoundError as exc:
            print(f"authbench run: {exc}", file=sys.stderr)
            return 2
        if args.suite is not None:
            print("authbench run: give either a SUITE or --resume RUN (a resumed run keeps "
                  "its own suite)", file=sys.stderr)
            return 2
        if args.only:
            print("authbench run: --only cannot be combined with --resume (a run keeps the "
                  "cells it planned)", file=sys.stderr)
            return 2
        suite = planned_suite(resume)
        # A resumed run measures what it started measuring: same stores, same topology.
        for line in restore_options(options, resume.metadata().get("options", {})):
            print(f"note: resume: {line}", file=sys.stderr)
    else:
        answering = available_services(options.redis_url, options.postgres_url)
        suite = load_suite(args.suite or "quick", answering)
    api_path = args.api or suite.api or (
        resume.metadata().get("api", {}).get("file", "") if resume is not None else "")
    if api_path:
        code = _point_at_api(args, api_path, suite, options, resume is not None)
        if isinstance(code, int):
            return code
        suite = code
    if args.only:
        suite = apply_only(suite, args.only)
    if options.external_workers and suite.interleave == "windows":
        print(f"authbench run: --external-workers needs a suite with interleave = \"cells\": "
              f"{suite.name} keeps every configuration up at once, and their Locust masters "
              f"would all listen on port {options.master_bind_port} (copy the suite, set "
              f"interleave = \"cells\", and run that file)", file=sys.stderr)
        return 2
    ceiling = None if options.api is not None else ceiling_config(suite)
    if ceiling is None and "store-ceiling" in suite.extras:
        suite = replace(suite, extras=tuple(e for e in suite.extras if e != "store-ceiling"))
        print("note: store-ceiling left out: no cell uses Redis or PostgreSQL", file=sys.stderr)
    elif ceiling is not None:
        options.extras = {**options.extras, "store-ceiling": store_ceiling_extra(ceiling)}
    for line in suite.skipped:
        print(f"note: {line}", file=sys.stderr)
        options.notes.append(line)
    if any(c.nodes > 1 for c in suite.cells) and not options.use_haproxy:
        print("note: --no-haproxy: users are spread over the nodes from the client side",
              file=sys.stderr)
    elif any(c.nodes > 1 for c in suite.cells) and haproxy_path() is None:
        message = ("HAProxy is not installed: users are spread over the nodes from the client "
                   "side (install haproxy for a real load balancer)")
        print(f"note: {message}", file=sys.stderr)
        options.notes.append(message)
    # SIGTERM and SIGHUP stop the run as Ctrl-C does, and no process it started outlives it.
    stopping = StopOnSignals()
    try:
        with stopping:
            run = run_suite(suite, options, resume)
    except RunInterrupted as stop:
        print("\ninterrupted: finished cells are kept; continue with "
              f"`authbench run --resume {stop.run.path}`", file=sys.stderr)
        return stopping.exit_code
    finally:
        if stopping.leftovers:
            print(f"note: stopped {stopping.leftovers} process(es) the run left running",
                  file=sys.stderr)
    rows = summarize_run(run.path)
    print("\n".join(format_summary(rows)))
    print("\n" + "\n".join(format_answer(load_run(run.path), run.path)))
    written = write_report(run.path)
    print(f"\nreport: {written['html']} (and {written['markdown'].name})")
    print(f"raw results: {run.path}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def _point_at_api(args: argparse.Namespace, path: str, suite: Suite, options: Any,
                  is_resumed: bool) -> Suite | int:
    """The suite over the adapter's variants, checked before any load; exit code 2 and
    one line when the adapter file or the API cannot be used."""
    from authbench.run.apisuite import FLOOR, api_suite, check_hosts
    from authbench.run.preflight import preflight

    try:
        api = load_adapter(path)
        check_hosts(api, args.allow_remote)
        if not is_resumed:
            suite, notes = api_suite(suite, api)
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
                options.notes.append(note)
    except (AdapterError, SuiteError) as exc:
        print(f"authbench run: {exc}", file=sys.stderr)
        return 2
    has_floor = any(c.api == FLOOR for c in suite.cells)
    print(f"checking {api.path}: {len(api.variants) + has_floor} variant(s) start, reject "
          "a request without a credential and accept one after login", file=sys.stderr)
    why = preflight(api, has_floor)
    if why is not None:
        print(f"authbench run: {why}", file=sys.stderr)
        return 2
    options.api = api
    return suite


def ceiling_config(suite: Suite) -> StoreCeilingConfig | None:
    """The store-ceiling extra sized to the suite: the stores its cells used (None: none
    did), each operation measured for as long as the suite's windows (1.5 to 3 s), 3 times
    (twice after short windows: quick keeps its 3 minutes)."""
    used = tuple(store for store in STORES if any(c.store == store for c in suite.cells))
    if not used:
        return None
    seconds = min(3.0, max(1.5, max(c.duration for c in suite.cells)))
    return StoreCeilingConfig(stores=used, seconds=seconds, repeats=3 if seconds >= 3 else 2)


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild report.md, report.html and charts/ of a run from its raw files."""
    folder = Path(args.run)
    if not any((folder / name).is_file()
               for name in ("metadata.json", "micro.json", "revocation.json")):
        print(f"authbench report: {folder}: not an authbench run (no metadata.json, "
              "micro.json or revocation.json)", file=sys.stderr)
        return 2
    from analysis.report.writer import write_report  # see the module's docstring

    written = write_report(folder)
    print(f"report: {written['html']}")
    print(f"        {written['markdown']}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two runs cell by cell; exit 1 on a regression past --fail-over percent."""
    from analysis.cost.compare import run_compare  # see the module's docstring

    for path in (args.run_a, args.run_b):
        if not (Path(path) / "metadata.json").is_file():
            print(f"authbench compare: {path}: not an authbench run", file=sys.stderr)
            return 2
    lines, code = run_compare(args.run_a, args.run_b, args.fail_over / 100,
                              args.latency_fail_over / 100)
    print("\n".join(lines))
    return code


def cmd_recommend(args: argparse.Namespace) -> int:
    """Which configuration meets a p99 and req/s target on a run's data, and why."""
    from analysis.cost.recommend import format_recommendation, recommend
    from analysis.data.load import load_run  # see the module's docstring

    if not (Path(args.run) / "metadata.json").is_file():
        print(f"authbench recommend: {args.run}: not an authbench run", file=sys.stderr)
        return 2
    candidates = recommend(load_run(args.run), args.p99_ms, args.rps)
    print("\n".join(format_recommendation(candidates, args.p99_ms, args.rps)))
    return 0 if any(c.is_meeting for c in candidates) else 1


def cmd_list(args: argparse.Namespace) -> int:
    """List the runs under results/, newest first."""
    runs = list_runs(Path(args.results))
    if not runs:
        print(f"no runs under {args.results}/")
        return 0
    print(f"{'run':<40}{'suite':<10}{'status':<13}{'ok':>5}{'failed':>7}{'planned':>8}")
    for r in runs:
        print(f"{r['run']:<40}{r['suite']:<10}{r['status']:<13}{r['ok']:>5}{r['failed']:>7}"
              f"{r['planned']:>8}")
    for r in runs:
        if "error" in r:
            print(f"note: {r['error']}", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    """Register run, report, compare, recommend and list."""
    run = sub.add_parser("run", help=cmd_run.__doc__, description=cmd_run.__doc__)
    run.add_argument("suite", nargs="?", default=None,
                     help=f"a shipped suite ({', '.join(builtin_suites())}; quick by default) "
                          "or a path to a .toml file")
    run.add_argument("--resume", metavar="RUN", help="finish the unfinished cells of a run")
    run.add_argument("--only", nargs="+", metavar="KEY=VALUE",
                     help="keep only the cells matching, e.g. mode=jwt users=10,50")
    run.add_argument("--results", default="results")
    run.add_argument("--redis-url", default=DEFAULT_STORE_URLS["redis"])
    run.add_argument("--postgres-url", default=DEFAULT_STORE_URLS["postgres"])
    run.add_argument("--external-workers", type=int, default=0,
                     help="also wait for N Locust workers started elsewhere "
                          "(locust -f loadtests/<scenario>.py --worker --master-host HOST)")
    run.add_argument("--master-bind-host", default="127.0.0.1",
                     help="interface the Locust master listens on for workers")
    run.add_argument("--master-bind-port", type=int, default=5557,
                     help="port the master listens on when --external-workers is set")
    run.add_argument("--no-pin", action="store_true",
                     help="let targets and Locust share every CPU (default: targets on the "
                          "first half of the CPUs, Locust and the runner on the rest)")
    run.add_argument("--api", metavar="FILE",
                     help="drive the API an adapter file describes, not the twins: the "
                          "suite's load over the file's variants (see README: Benchmark "
                          "your own API)")
    run.add_argument("--allow-remote", action="store_true",
                     help="let --api send load to a host other than this machine (yours to "
                          "answer for)")
    run.add_argument("--no-haproxy", action="store_true",
                     help="spread users over nodes from the client side even if HAProxy exists")
    run.set_defaults(handler=cmd_run)

    report = sub.add_parser("report", help=cmd_report.__doc__, description=cmd_report.__doc__)
    report.add_argument("run", help="a run folder under results/")
    report.set_defaults(handler=cmd_report)

    compare = sub.add_parser("compare", help=cmd_compare.__doc__, description=cmd_compare.__doc__)
    compare.add_argument("run_a", metavar="RUN_A")
    compare.add_argument("run_b", metavar="RUN_B")
    compare.add_argument("--fail-over", type=float, default=10.0, metavar="PERCENT",
                         help="minimum effect size counted as a regression (default 10)")
    compare.add_argument("--latency-fail-over", type=float, default=30.0, metavar="PERCENT",
                         help="the same for p99, which is noisier between runs (default 30)")
    compare.set_defaults(handler=cmd_compare)

    advise = sub.add_parser("recommend", help=cmd_recommend.__doc__,
                            description=cmd_recommend.__doc__)
    advise.add_argument("run")
    advise.add_argument("--p99-ms", type=float, required=True)
    advise.add_argument("--rps", type=float, required=True)
    advise.set_defaults(handler=cmd_recommend)

    listing = sub.add_parser("list", help=cmd_list.__doc__, description=cmd_list.__doc__)
    listing.add_argument("--results", default="results")
    listing.set_defaults(handler=cmd_list)
