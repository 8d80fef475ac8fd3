"""Loopback ports: find a free one, or say clearly that a chosen one is busy."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


class PortBusy(RuntimeError):
    """The port a user asked for is already taken."""


def free_port(host: str = LOOPBACK) -> int:
    """A port the OS says is free right now on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_port_free(port: int, host: str = LOOPBACK) -> None:
    """Raise PortBusy naming the port if something already listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortBusy(f"port {port} on {host} is in use ({exc.strerror}); "
                           "pick another with --port") from None
