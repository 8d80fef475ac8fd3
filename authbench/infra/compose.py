"""Container artefacts made from the code, so docker-compose.yml never needs a hand edit.

    python -m authbench.infra.compose           # (re)write docker/haproxy.cfg
    python -m authbench.infra.compose --check   # exit 1 when the file differs from the code's

docker/haproxy.cfg puts one HAProxy frontend per auth mode in front of the compose
service target-<mode>, whose replicas (`docker compose up --scale target-jwt=3`) are
found through Docker's DNS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from authbench.infra.haproxy import DnsBackend, haproxy_dns_config
from targets.settings import AUTH_MODES

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CFG = ROOT / "docker" / "haproxy.cfg"
TARGET_PORT = 8000  # the port the image's CMD serves on (authbench serve --port 8000)
FIRST_BALANCER_PORT = 8000  # none 8000, session 8001, jwt 8002, hybrid 8003
REPLICA_SLOTS = 10  # most replicas of one target service HAProxy balances over


def target_service(mode: str) -> str:
    """The compose service that runs the targets of one auth mode."""
    return f"target-{mode}"


def balancer_ports() -> dict[str, int]:
    """The HAProxy port of each auth mode, in AUTH_MODES order."""
    return {mode: FIRST_BALANCER_PORT + index for index, mode in enumerate(AUTH_MODES)}


def compose_haproxy_config() -> str:
    """What docker/haproxy.cfg must hold."""
    backends = [DnsBackend(mode, f"*:{port}", target_service(mode), TARGET_PORT, REPLICA_SLOTS)
                for mode, port in balancer_ports().items()]
    return ("# Regenerate with: python -m authbench.infra.compose\n"
            + haproxy_dns_config(backends, "roundrobin"))


def main(argv: Sequence[str] | None = None) -> int:
    """Write docker/haproxy.cfg, or with --check say whether it is up to date."""
    parser = argparse.ArgumentParser(prog="python -m authbench.infra.compose",
                                     description=main.__doc__)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file is out of date")
    parser.add_argument("--output", type=Path, default=HAPROXY_CFG)
    args = parser.parse_args(argv)
    wanted = compose_haproxy_config()
    current = args.output.read_text() if args.output.exists() else None
    if args.check:
        if current != wanted:
            print(f"{args.output} is out of date: run python -m authbench.infra.compose",
                  file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(wanted)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
