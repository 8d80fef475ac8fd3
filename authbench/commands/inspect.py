"""`authbench inspect TOKEN`: the command over authbench.inspect."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from authbench.inspect import (
    TokenUnreadable,
    VerifyingKey,
    inspect_token,
    report_lines,
    verify_signature,
)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Decode a JWT, show its expiry, verify it with a key, flag what is unsafe."""
    token = args.token
    if token == "-":
        token = sys.stdin.read().strip()
    now = time.time()
    try:
        found = inspect_token(token, now)
    except TokenUnreadable as exc:
        print(f"authbench inspect: not a JWT: {exc}")
        return 2
    given = VerifyingKey(secret=args.secret, pem_path=args.key, jwks_url=args.jwks)
    if given.is_given:
        verify_signature(token.strip(), found, given)
    print("\n".join(report_lines(found, now)))
    return 1 if found.has_errors else 0


def add_parsers(sub: Any) -> None:
    """Register `authbench inspect`."""
    parser = sub.add_parser("inspect", help=cmd_inspect.__doc__, description=cmd_inspect.__doc__)
    parser.add_argument("token", help="the JWT, or - to read it from standard input")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--secret", help="HMAC secret (as text)")
    keys.add_argument("--key", help="PEM public (or private) key file")
    keys.add_argument("--jwks", help="JWKS URL on loopback, e.g. a target's /.well-known/jwks.json")
    parser.set_defaults(handler=cmd_inspect)
