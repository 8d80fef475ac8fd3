"""Helpers the tests share: namespaces in the real stores, fast KDF settings."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Callable

import psutil
import pytest

# Cheap scrypt in tests: the KDF is the same code, with a smaller cost.
FAST_KDF = {"KDF_N": "1024", "KDF_P": "1"}


def unique_namespace() -> str:
    """A Redis prefix / PostgreSQL schema no other test uses."""
    return f"t_{secrets.token_hex(6)}"


def store_env(store: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for a target on `store`, in a fresh namespace of its own."""
    if store == "memory":
        return {"STORE": "memory"}
    url = request.getfixturevalue("redis_url" if store == "redis" else "postgres_url")
    return {"STORE": store, "STORE_URL": url, "STORE_NAMESPACE": unique_namespace()}


def drop_namespace(env: dict[str, str]) -> None:
    """Remove what a test target left in a shared store."""
    from targets.settings import Settings
    from targets.stores import make_store

    if env.get("STORE", "memory") == "memory":
        return
    store = make_store(Settings.from_env(env))

    async def drop() -> None:
        await store.open()
        try:
            await store.discard()
        finally:
            await store.close()

    asyncio.run(drop())




def closed_port() -> int:
    """A loopback port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until condition() holds; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def is_gone(process: psutil.Process) -> bool:
    """True once a process has exited (a zombie counts: it runs no more)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
