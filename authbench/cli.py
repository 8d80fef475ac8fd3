"""The authbench command line: a table of subcommands, one cmd_* function each."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Callable, Sequence

from authbench.ports import LOOPBACK, PortBusy
from authbench.suite import SuiteError
from targets.settings import REVOCATIONS, ConfigError, Settings

Command = Callable[[argparse.Namespace], int]


class StoreUnreachable(RuntimeError):
    """A shared store the command needs does not answer."""

# Flags of `serve` that stand for target environment variables.
SERVE_FLAGS = {"mode": "AUTH_MODE", "store": "STORE", "store_url": "STORE_URL", "alg": "JWT_ALG",
               "revocation": "JWT_REVOCATION"}


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return {env: value for flag, env in SERVE_FLAGS.items()
            if (value := getattr(args, flag, None)) is not None}


def cmd_serve(args: argparse.Namespace) -> int:
    """Run one target in the foreground (configured by environment variables and flags)."""
    from authbench.children import die_with_parent
    from authbench.serve import serve

    if not die_with_parent():
        print("authbench serve: the process that started this target has exited",
              file=sys.stderr)
        return 1
    serve(_overrides(args), args.host, args.port)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Put N live sessions into a shared store through its bulk path."""
    import os

    from targets.seeding import seed_sessions
    from targets.stores import make_store

    # The flags over the environment, without changing this process's environment (a
    # caller in the same process would start its targets on this store).
    settings = Settings.from_env({**os.environ, **_overrides(args)})
    if settings.store == "memory":
        print("authbench seed: a memory store lives inside each target; "
              "start the target with SEED_SESSIONS=N instead", file=sys.stderr)
        return 2

    async def run() -> tuple[int, float]:
        store = make_store(settings)
        try:
            await store.open()
        except store.unavailable_errors as exc:
            raise StoreUnreachable(f"{settings.store} at {settings.store_url} is not "
                                   f"reachable: {exc}") from None
        try:
            if args.clear:
                await store.clear()
            started = time.perf_counter()
            count = await seed_sessions(store, args.sessions, settings)
            return count, time.perf_counter() - started
        finally:
            await store.close()

    count, seconds = asyncio.run(run())
    print(f"seeded {count:,} sessions into {settings.store} in {seconds:.2f} s "
          f"({count / seconds:,.0f}/s)")
    return 0


def _add_target_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("none", "session", "jwt", "hybrid"),
                        help="AUTH_MODE")
    parser.add_argument("--store", choices=("memory", "redis", "postgres"), help="STORE")
    parser.add_argument("--store-url", help="STORE_URL")
    parser.add_argument("--alg", help="JWT_ALG")
    parser.add_argument("--revocation", choices=REVOCATIONS, help="JWT_REVOCATION")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="authbench", description="Sessions or JWT? Measure it on your own hardware."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help=cmd_serve.__doc__, description=cmd_serve.__doc__)
    serve.add_argument("--host", default=LOOPBACK)
    serve.add_argument("--port", type=int, default=8000)
    _add_target_flags(serve)
    serve.set_defaults(handler=cmd_serve)

    seed = sub.add_parser("seed", help=cmd_seed.__doc__, description=cmd_seed.__doc__)
    seed.add_argument("--sessions", type=int, required=True)
    seed.add_argument("--clear", action="store_true", help="empty the namespace first")
    _add_target_flags(seed)
    seed.set_defaults(handler=cmd_seed)

    from authbench import (
        accuracy,
        clientbench,
        micro,
        overloadbench,
        revocationbench,
        runcmd,
        targetbench,
        tokencheck,
    )

    runcmd.add_parsers(sub)
    tokencheck.add_parser(sub)
    micro.add_parser(sub)
    accuracy.add_parser(sub)
    targetbench.add_parser(sub)
    clientbench.add_parser(sub)
    revocationbench.add_parser(sub)
    overloadbench.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse argv and run the subcommand; turn expected failures into one clear line."""
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args)
    except (ConfigError, PortBusy, StoreUnreachable, SuiteError) as exc:
        print(f"authbench {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"authbench {args.command}: interrupted", file=sys.stderr)
        return 128 + getattr(stop, "signum", signal.SIGINT)  # 130, or 143 for SIGTERM
