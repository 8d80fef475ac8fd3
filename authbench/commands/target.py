"""`authbench serve`, `authbench seed` and `authbench verify`: one target and its store."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from adapters.loading import AdapterError, load_adapter
from authbench.infra.children import die_with_parent
from authbench.infra.ports import LOOPBACK
from authbench.infra.serve import serve
from authbench.run.verify import verify_api, verify_target
from targets.seeding import seed_sessions
from targets.settings import AUTH_MODES, JWT_ALGORITHMS, REVOCATIONS, STORE_KINDS, Settings
from targets.stores import make_store


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
    if not die_with_parent():
        print("authbench serve: the process that started this target has exited",
              file=sys.stderr)
        return 1
    serve(_overrides(args), args.host, args.port)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Put N live sessions into a shared store through its bulk path."""
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


def cmd_verify(args: argparse.Namespace) -> int:
    """Run the conformance check against a running target (a twin, or with --api any API
    its adapter file describes)."""
    if args.api is None:
        result = verify_target(args.url)
    else:
        try:
            api = load_adapter(args.api)
            adapter = api.variant(args.variant) if args.variant else api.variants[0]
        except AdapterError as exc:
            print(f"authbench verify: {exc}", file=sys.stderr)
            return 2
        result = verify_api(adapter, args.url)
    print("\n".join(result.lines()))
    return 0 if result.is_passed else 1


def _add_target_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=AUTH_MODES, help="AUTH_MODE")
    parser.add_argument("--store", choices=STORE_KINDS, help="STORE")
    parser.add_argument("--store-url", help="STORE_URL")
    parser.add_argument("--alg", choices=JWT_ALGORITHMS, help="JWT_ALG")
    parser.add_argument("--revocation", choices=REVOCATIONS, help="JWT_REVOCATION")


def add_parsers(sub: Any) -> None:
    """Register serve, seed and verify."""
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

    verify = sub.add_parser("verify", help=cmd_verify.__doc__, description=cmd_verify.__doc__)
    verify.add_argument("url")
    verify.add_argument("--api", metavar="FILE", help="check through this adapter file")
    verify.add_argument("--variant", help="the adapter's variant (default: its first), for "
                        "what its logout declares")
    verify.set_defaults(handler=cmd_verify)
