"""The authbench command line: a table of subcommands, one cmd_* function each.

The handlers live in authbench.commands, one module per group of commands.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence

from analysis.data.formats import UnknownFormat
from authbench.bench.h2load import H2loadMissing
from authbench.bench.wrk import WrkMissing
from authbench.commands import bench, inspect, netdelay, run, target, worker
from authbench.commands.target import StoreUnreachable
from authbench.infra.netdelay import NetdelayError
from authbench.infra.ports import PortBusy
from authbench.run.suite import SuiteError
from targets.settings import ConfigError

Command = Callable[[argparse.Namespace], int]
# The table: each group registers its subcommands, in the order --help lists them.
GROUPS = (target, run, inspect, bench, netdelay, worker)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="authbench", description="Sessions or JWT? Measure it on your own hardware."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv and run the subcommand; turn expected failures into one clear line."""
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args)
    except (ConfigError, PortBusy, StoreUnreachable, SuiteError, UnknownFormat, WrkMissing,
            H2loadMissing, NetdelayError) as exc:
        print(f"authbench {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"authbench {args.command}: interrupted", file=sys.stderr)
        return 128 + getattr(stop, "signum", signal.SIGINT)  # 130, or 143 for SIGTERM
