"""Helpers the tests share: namespaces in the real stores, fast KDF settings, targets
served in this process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

# Cheap scrypt in tests: the KDF is the same code, with a smaller cost.
FAST_KDF = {"KDF_N": "1024", "KDF_P": "1"}


def read_json(path: Path) -> Any:
    """A JSON file's contents (a run's metadata.json, cell.json, ...)."""
    return json.loads(path.read_text())


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


IN_PROCESS_URL = "http://testserver"
IN_PROCESS_TIMEOUT = 30.0


class _Chunks(httpx.AsyncByteStream):
    """A request body read from a sync stream, handed on chunk by chunk (chunked stays so)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class _OnLoopTransport(httpx.BaseTransport):
    """A sync transport that runs each request through httpx.ASGITransport on the app's loop."""

    def __init__(self, target: InProcessTarget) -> None:
        self._asgi = httpx.ASGITransport(app=target.app)
        self._loop = target.loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            request.stream = _Chunks(list(request.stream))
        sent = asyncio.run_coroutine_threadsafe(self._send(request), self._loop)
        return sent.result(IN_PROCESS_TIMEOUT)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        answer = await self._asgi.handle_async_request(request)
        assert isinstance(answer.stream, httpx.AsyncByteStream)
        body = b"".join([part async for part in answer.stream])
        return httpx.Response(answer.status_code, headers=answer.headers,
                              stream=httpx.ByteStream(body))


class InProcessTarget:
    """A target app served in this process: no socket, no uvicorn, its lifespan run.

    For tests where the HTTP server adds nothing. The app's startup (store opened,
    sessions seeded, the mode started) and shutdown run around it, on an event loop in
    a thread of its own; sync httpx clients reach it through httpx.ASGITransport, and
    an exception inside the app fails the request (where uvicorn would answer 500).
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        from targets.app import create_app
        from targets.settings import Settings

        self.env = dict(env)
        self.url = IN_PROCESS_URL
        self.app = create_app(Settings.from_env(self.env))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._stop = asyncio.Event()
        self._lifespan: concurrent.futures.Future[None] | None = None

    def start(self) -> None:
        """Run the app's startup; its error, if any, is raised here."""
        self._thread.start()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lifespan = asyncio.run_coroutine_threadsafe(self._serve(ready), self.loop)
        concurrent.futures.wait([ready, self._lifespan], IN_PROCESS_TIMEOUT,
                                return_when=concurrent.futures.FIRST_COMPLETED)
        if not ready.done():
            self._close_loop()
            self._lifespan.result(0)  # the startup's own error (or a timeout)

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        async with self.app.router.lifespan_context(self.app):
            ready.set_result(None)
            await self._stop.wait()

    def client(self) -> httpx.Client:
        """A new client of this app (close it, or use it in a with block)."""
        return httpx.Client(transport=_OnLoopTransport(self), base_url=self.url)

    def stop(self) -> None:
        """Run the app's shutdown, then end its loop."""
        if self._lifespan is None or not self._thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._lifespan.result(IN_PROCESS_TIMEOUT)
        finally:
            self._close_loop()
            gc.unfreeze()  # the startup froze all this process held: let it be collected

    def _close_loop(self) -> None:
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), self.loop).result(IN_PROCESS_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(IN_PROCESS_TIMEOUT)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def __enter__(self) -> InProcessTarget:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _cancel_the_rest() -> None:
    """Cancel and await what the app left running, so nothing is destroyed pending."""
    current = asyncio.current_task()
    rest = [task for task in asyncio.all_tasks() if task is not current]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)


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


def require_netns() -> None:
    """Skip unless network namespaces can be made here (root, `ip`, a working kernel),
    saying why; in CI, where tests run as root, fail instead."""
    import os

    from authbench.infra.netns import netns_unavailable

    why = netns_unavailable()
    if why is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI needs network namespaces: {why}")
    pytest.skip(f"network namespaces: {why}")
