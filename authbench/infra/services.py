"""Which shared stores answer: a TCP connect to each URL's host and port."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from authbench.infra.ports import LOOPBACK

DEFAULT_PORTS = {"redis": 6379, "postgres": 5432}


def service_answers(url: str, default_port: int) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or LOOPBACK, parts.port or default_port),
                                      timeout=1.0):
            return True
    except OSError:
        return False


def available_services(redis_url: str, postgres_url: str) -> list[str]:
    """The shared stores that answer right now."""
    urls = {"redis": redis_url, "postgres": postgres_url}
    return [kind for kind, url in urls.items() if service_answers(url, DEFAULT_PORTS[kind])]
