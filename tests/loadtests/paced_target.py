"""A target whose timing is known in advance, for tests of the load generator itself.

A bare ASGI app serving GET /noauth (the floor scenario's one request):
- PACED_BUSY_MS: each request holds the event loop (busy CPU, not a sleep) this long,
  so a single-process server's capacity is 1000 / PACED_BUSY_MS requests per second;
- PACED_STALL_EVERY / PACED_STALL_FOR: every STALL_EVERY seconds the whole loop stops
  for STALL_FOR seconds (a blocking call, as a GC pause or a synchronous lookup would).

    PACED_BUSY_MS=2 python -m uvicorn tests.loadtests.paced_target:app --port 8000
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

BUSY_SECONDS = float(os.environ.get("PACED_BUSY_MS", "0")) / 1000
STALL_EVERY = float(os.environ.get("PACED_STALL_EVERY", "0"))
STALL_FOR = float(os.environ.get("PACED_STALL_FOR", "0"))

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _busy(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


async def _stall_now_and_then() -> None:
    while True:
        await asyncio.sleep(STALL_EVERY)
        time.sleep(STALL_FOR)  # blocks the loop on purpose: nothing is served meanwhile


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        tasks = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if STALL_EVERY > 0:
                    tasks.append(asyncio.create_task(_stall_now_and_then()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if BUSY_SECONDS > 0:
        _busy(BUSY_SECONDS)
    found = scope["path"] == "/noauth"
    await send({"type": "http.response.start", "status": 200 if found else 404,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok" if found else b"not found"})
