"""`authbench netdelay`: a TCP delay line that puts a store "across a network"."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from authbench.infra.children import die_with_parent
from authbench.infra.netdelay import Relay, join_host_port, run_until_signalled


def cmd_netdelay(args: argparse.Namespace) -> int:
    """Relay TCP to HOST:PORT adding a round trip (half each way), sub-millisecond accurate."""
    if not die_with_parent():
        print("authbench netdelay: the process that started it has exited", file=sys.stderr)
        return 1
    with Relay(args.listen, args.to, args.rtt_ms, args.jitter_ms) as relay:
        # A parent reads this line to learn the port (--listen HOST:0 picks a free one).
        print(f"listening on {join_host_port(relay.host, relay.port)}", flush=True)
        stats = run_until_signalled(relay)
    print(f"authbench netdelay: stopped; {stats.line()}", file=sys.stderr, flush=True)
    return 0


def add_parsers(sub: Any) -> None:
    """Register netdelay."""
    netdelay = sub.add_parser("netdelay", help=cmd_netdelay.__doc__,
                              description=f"{cmd_netdelay.__doc__} Each chunk leaves at its "
                              "arrival + RTT/2 (+ jitter), in order; SIGTERM stops it.")
    netdelay.add_argument("--listen", required=True, metavar="HOST:PORT",
                          help="where clients connect (port 0: a free one, printed on start)")
    netdelay.add_argument("--to", required=True, metavar="HOST:PORT", help="the upstream")
    # Numbers are parsed by the command, so a bad one is one line, as a bad address is.
    netdelay.add_argument("--rtt-ms", required=True, metavar="X",
                          help="the round trip to add, in milliseconds")
    netdelay.add_argument("--jitter-ms", default="0", metavar="Y",
                          help="each way varies uniformly by +-Y/2, so the RTT by up to +-Y")
    netdelay.set_defaults(handler=cmd_netdelay)
