"""`authbench serve`: one target on uvicorn with uvloop and httptools, one worker.

Overload is shed in two bounded steps, both answering 503 with `Retry-After: 1`
before the request reaches the app:

- `MAX_CONCURRENCY` requests in flight (parsed, not yet answered): a new request
  gets the 503 at once, written by the protocol without reaching the event loop's
  queue, and its connection stays open (`BoundedHttpToolsProtocol`);
- `CONNECTIONS_PER_REQUEST_SLOT` x `MAX_CONCURRENCY` connections open: uvicorn's own
  `limit_concurrency` answers the 503 and closes the connection.

Why not uvicorn's limit alone: it counts open connections as well as requests, and
over HTTP/1.1 a connection carries one request at a time, so it is in effect a
connection limit: idle keep-alive connections count against it, every request on
every connection is refused while the count is reached, and each refusal closes its
connection, so clients that come straight back (h2load does; so do many retry
loops) turn the overload into a reconnect storm. Its 503 also carries no
Retry-After and logs a line per request: `shed_request` replaces the response, and
`ShedLogSummary` turns the lines into one per interval with a count.
"""

from __future__ import annotations

import logging
import os
import time

import uvicorn
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http import httptools_impl

from authbench.infra.ports import check_port_free
from targets.settings import Settings

CONNECTIONS_PER_REQUEST_SLOT = 4
SHED_BODY = b"Service Unavailable"
SHED_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(SHED_BODY)).encode()),
    (b"retry-after", b"1"),
]
CLOSE_HEADER = (b"connection", b"close")
UVICORN_SHED_MESSAGE = "Exceeded concurrency limit."
SHED_LOG_INTERVAL = 5.0

logger = logging.getLogger("uvicorn.error")


async def shed_request(scope: Scope, receive: ASGIReceiveCallable,
                       send: ASGISendCallable) -> None:
    """What uvicorn runs instead of the app beyond its connection limit."""
    headers = [*SHED_HEADERS, CLOSE_HEADER]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": SHED_BODY, "more_body": False})




def _raw_response(headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 503 Service Unavailable", *(k + b": " + v for k, v in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + SHED_BODY


SHED_RESPONSE = _raw_response(SHED_HEADERS)
SHED_RESPONSE_CLOSE = _raw_response([*SHED_HEADERS, CLOSE_HEADER])  # HTTP/1.0, or asked to


class ShedCount:
    """Counts shed requests; says so at most once per interval."""

    def __init__(self, interval: float = SHED_LOG_INTERVAL) -> None:
        self.interval = interval
        self.count = 0
        self.last_said = -float("inf")

    def add(self, reason: str) -> str | None:
        """Count one; return the line to log when the interval is over, else None."""
        self.count += 1
        now = time.monotonic()
        if now - self.last_said < self.interval:
            return None
        line = f"{reason}: {self.count} requests shed with 503"
        if self.last_said != -float("inf"):
            line += f" in the last {now - self.last_said:.0f} s"
        self.last_said = now
        self.count = 0
        return line


class ShedLogSummary(logging.Filter):
    """Turns uvicorn's warning per shed request into one line per interval, with a count."""

    def __init__(self, interval: float = SHED_LOG_INTERVAL) -> None:
        super().__init__()
        self.shed = ShedCount(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != UVICORN_SHED_MESSAGE:
            return True
        line = self.shed.add("connection limit reached (uvicorn's limit_concurrency)")
        if line is None:
            return False
        record.msg = line
        return True


class RequestSlots:
    """Requests admitted to the app and not yet answered, against a bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.shed = ShedCount()

    def admit(self, app: ASGI3Application) -> ASGI3Application | None:
        """The app, wrapped to free its slot when done; None when every slot is taken."""
        if self.in_use >= self.limit:
            return None
        self.in_use += 1

        async def admitted(scope: Scope, receive: ASGIReceiveCallable,
                           send: ASGISendCallable) -> None:
            try:
                await app(scope, receive, send)
            finally:
                self.in_use -= 1

        return admitted


class BoundedHttpToolsProtocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol, shedding by requests in flight rather than connections.

    uvicorn starts a task per request as soon as it is parsed (`_start_asgi_task`, for
    a pipelined request once the one before it is answered); the slot is taken there,
    so requests parsed but still waiting in the event loop's queue count too (a
    CPU-bound app never awaits mid-request: a counter inside the app would only ever
    see one at a time while the backlog waits in the queue). Shed requests take no
    slot: if their 503s counted, a stream of them would keep the count at the bound
    and nothing would ever be admitted.
    """

    slots = RequestSlots(0)  # bounded_protocol gives each server its own

    def _start_asgi_task(self, cycle: httptools_impl.RequestResponseCycle,
                         app: ASGI3Application) -> None:
        if app is self.app:  # not uvicorn's own 503 beyond its connection limit
            admitted = self.slots.admit(app)
            if admitted is None:
                self._shed_now(cycle)
                return
            app = admitted
        super()._start_asgi_task(cycle, app)

    def _shed_now(self, cycle: httptools_impl.RequestResponseCycle) -> None:
        """Answer 503 at once, from the protocol: no task, no ASGI, no wait in the queue."""
        line = self.slots.shed.add(f"MAX_CONCURRENCY={self.slots.limit} requests in flight")
        if line is not None:
            logger.warning(line)
        cycle.response_complete = True  # a body still arriving is read and dropped
        if not cycle.keep_alive:
            self.transport.write(SHED_RESPONSE_CLOSE)
            self.transport.close()
            return
        self.transport.write(SHED_RESPONSE)
        self.on_response_complete()  # the next pipelined request, or the keep-alive timer


def bounded_protocol(max_requests: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for one server, with its own request slots."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,),
                {"slots": RequestSlots(max_requests)})


def install_shedding() -> None:
    """Point uvicorn's httptools protocol at shed_request and summarize its log lines."""
    if hasattr(httptools_impl, "service_unavailable"):
        httptools_impl.service_unavailable = shed_request  # looked up per request
    else:
        logger.warning("uvicorn moved service_unavailable: its 503s carry no Retry-After")
    if not any(isinstance(f, ShedLogSummary) for f in logger.filters):
        logger.addFilter(ShedLogSummary())


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    """The uvicorn setup every target uses: uvloop, httptools, no access log, bounded."""
    ssl: dict[str, str] = {}
    if settings.tls_cert_file and settings.tls_key_file:
        ssl = {
            "ssl_certfile": str(settings.tls_cert_file),
            "ssl_keyfile": str(settings.tls_key_file),
        }
    max_connections = settings.max_concurrency * CONNECTIONS_PER_REQUEST_SLOT
    config = uvicorn.Config(
        "targets.asgi:app",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http=bounded_protocol(settings.max_concurrency) if settings.max_concurrency
        else "httptools",
        access_log=False,
        log_level="warning",
        workers=1,
        timeout_graceful_shutdown=5,
        limit_concurrency=max_connections or None,
        **ssl,  # type: ignore[arg-type]
    )
    install_shedding()  # after Config, which (re)configures uvicorn's loggers
    return config


def serve(overrides: dict[str, str], host: str, port: int) -> None:
    """Run one target in the foreground until interrupted."""
    os.environ.update(overrides)
    settings = Settings.from_env()  # fail here, with the variable's name, before binding
    check_port_free(port, host)
    uvicorn.Server(uvicorn_config(settings, host, port)).run()
