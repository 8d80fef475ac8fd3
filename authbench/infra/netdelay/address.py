"""HOST:PORT text, and store URLs pointed at another host and port."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

EXPECTED = "expected HOST:PORT (an IPv6 address in brackets: [::1]:6379)"


def split_host_port(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' as (host, port); ValueError that says what is wrong."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{text!r}: {EXPECTED}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if host and ":" not in host:
            raise ValueError(f"{text!r}: brackets are for IPv6 addresses only")
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError(f"{text!r}: {EXPECTED}")
    if not host:
        raise ValueError(f"{text!r}: {EXPECTED}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def join_host_port(host: str, port: int) -> str:
    """The HOST:PORT text for host and port, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def with_host_port(url: str, host: str, port: int) -> str:
    """url with its host and port replaced; scheme, user, password, path and query kept."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"{url!r}: expected a URL such as redis://host:port/0")
    user, at, address = parts.netloc.rpartition("@")
    if "," in address:
        raise ValueError(f"{url!r}: a URL with several hosts cannot go through one proxy")
    return urlunsplit(parts._replace(netloc=f"{user}{at}{join_host_port(host, port)}"))
