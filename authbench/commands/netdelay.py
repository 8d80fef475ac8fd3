"""`authbench netdelay`: a TCP delay line that puts a store "across a network".

Also `python -m authbench.commands.netdelay`, the same command without the rest of the CLI:
a suite starts dozens of delay lines, and the whole CLI costs each one about 1 s of CPU
and 70 MB to import (this module alone: 0.2 s, 28 MB).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from authbench.infra.children import die_with_parent
from authbench.infra.netdelay import NetdelayError, Relay, join_host_port, run_until_signalled
from authbench.infra.ports import PortBusy

DESCRIPTION = ("Each chunk leaves at its arrival + RTT/2 (+ jitter), in order; SIGTERM stops "
               "it. It prints 'listening on HOST:PORT' once it listens.")


def cmd_netdelay(args: argparse.Namespace) -> int:
    """Relay TCP to HOST:PORT adding a round trip (half each way), sub-millisecond accurate."""
    if not die_with_parent():
        print("authbench netdelay: the process that started it has exited", file=sys.stderr)
        return 1
    with Relay(args.listen, args.to, args.rtt_ms, args.jitter_ms) as relay:
        # A parent reads this line to learn the port (--listen HOST:0 picks a free one), and
        # may stop it at once: the line is printed only once the stop signals are handled.
        line = f"listening on {join_host_port(relay.host, relay.port)}"
        stats = run_until_signalled(relay, lambda: print(line, flush=True))
    print(f"authbench netdelay: stopped; {stats.line()}", file=sys.stderr, flush=True)
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments, on the CLI's subparser or this module's own parser."""
    parser.add_argument("--listen", required=True, metavar="HOST:PORT",
                        help="where clients connect (port 0: a free one, printed on start)")
    parser.add_argument("--to", required=True, metavar="HOST:PORT", help="the upstream")
    # Numbers are parsed by the command, so a bad one is one line, as a bad address is.
    parser.add_argument("--rtt-ms", required=True, metavar="X",
                        help="the round trip to add, in milliseconds")
    parser.add_argument("--jitter-ms", default="0", metavar="Y",
                        help="each way varies uniformly by +-Y/2, so the RTT by up to +-Y")
    parser.set_defaults(handler=cmd_netdelay)


def add_parsers(sub: Any) -> None:
    """Register netdelay."""
    configure(sub.add_parser("netdelay", help=cmd_netdelay.__doc__,
                             description=f"{cmd_netdelay.__doc__} {DESCRIPTION}"))


def main(argv: Sequence[str] | None = None) -> int:
    """`authbench netdelay` alone, with the CLI's one-line errors."""
    parser = argparse.ArgumentParser(prog="authbench netdelay",
                                     description=f"{cmd_netdelay.__doc__} {DESCRIPTION}")
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_netdelay(args)
    except (NetdelayError, PortBusy) as exc:
        print(f"authbench netdelay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the relay's own handlers were in place
        print("authbench netdelay: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
