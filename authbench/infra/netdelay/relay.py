"""The delay line in this process: its listening socket, its upstream, and the C relay's run.

The relay itself is C (_relay.c): event-loop timers wake in whole milliseconds, and a
Python thread per chunk would add more than a datacenter round trip of its own.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import math
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType, TracebackType

from authbench.infra.netdelay.address import join_host_port, split_host_port
from authbench.infra.ports import PortBusy

NOT_BUILT = ("the C relay authbench/infra/netdelay/_relay.c is not built ({reason}); on Linux "
             "build it with `.venv/bin/pip install -e .` (python3 tasks.py does it on a fresh "
             "clone)")
NO_EPOLL_PWAIT2 = "the relay needs Linux 5.11 or later (epoll_pwait2, for nanosecond waits)"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
LISTEN_BACKLOG = 512


class NetdelayError(ValueError):
    """A delay line cannot run as asked: a bad address or delay, or no C relay."""


@dataclass(frozen=True)
class RelayStats:
    """What one run forwarded, and how close to their due times the chunks left."""

    connections: int
    refused: int  # connections whose upstream refused or could not be reached
    chunks: int
    bytes: int
    wake_ns: int  # median time a timed wait ended late: every wait is shortened by it
    send_ns: int  # median time send() took (on loopback it delivers into the receiver)
    late_ns: int  # median of (send returned - due): the relay's own error, each way

    def line(self) -> str:
        """One line for the log."""
        return (f"{self.connections} connections ({self.refused} refused upstream), "
                f"{self.chunks} chunks, {self.bytes} bytes; median wake-up "
                f"{self.wake_ns / 1000:.1f} us (taken off each wait), send "
                f"{self.send_ns / 1000:.1f} us, sent {self.late_ns / 1000:+.1f} us from due")


def load_relay() -> ModuleType:
    """The compiled relay module, or NetdelayError saying how to build it."""
    try:
        # By name: the compiled module has no source, so an import statement would read as
        # this package importing itself (tests/test_layout.py).
        return importlib.import_module("authbench.infra.netdelay._relay")
    except ImportError as exc:
        raise NetdelayError(NOT_BUILT.format(reason=exc)) from None


def parse_delay_ms(text: str | float, flag: str) -> float:
    """A delay in milliseconds: a finite number, zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise NetdelayError(f"{flag} {text!r}: expected a number of milliseconds") from None
    if not math.isfinite(value) or value < 0:
        raise NetdelayError(f"{flag} {text}: expected zero or more milliseconds")
    return value


def _address(text: str, flag: str) -> tuple[str, int]:
    try:
        return split_host_port(text)
    except ValueError as exc:
        raise NetdelayError(f"{flag} {exc}") from None


def _resolve(host: str, port: int, flag: str, passive: bool = False) -> tuple[int, str]:
    """(family, numeric address) of the first answer for host."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE if passive else 0)
    except socket.gaierror as exc:
        raise NetdelayError(f"{flag} {join_host_port(host, port)}: cannot resolve "
                            f"{host!r} ({exc.strerror})") from None
    family, _type, _proto, _name, sockaddr = found[0]
    return family, str(sockaddr[0])


def _listen(host: str, port: int) -> socket.socket:
    family, numeric = _resolve(host, port, "--listen", passive=True)
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A restart on the same port must not wait out the last run's TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((numeric, port))
        listener.listen(LISTEN_BACKLOG)
    except OSError as exc:
        listener.close()
        where = join_host_port(host, port)
        if exc.errno == errno.EADDRINUSE:
            raise PortBusy(f"port {port} on {host} is in use ({exc.strerror}); "
                           "pick another with --listen") from None
        raise NetdelayError(f"--listen {where}: cannot listen there ({exc.strerror})") from None
    return listener


class Relay:
    """A listening delay line in front of one upstream; run() relays until stop()."""

    def __init__(self, listen: str, to: str, rtt_ms: str | float,
                 jitter_ms: str | float = 0.0) -> None:
        self.rtt_ms = parse_delay_ms(rtt_ms, "--rtt-ms")
        self.jitter_ms = parse_delay_ms(jitter_ms, "--jitter-ms")
        to_host, self.upstream_port = _address(to, "--to")
        _family, self.upstream_host = _resolve(to_host, self.upstream_port, "--to")
        self._relay = load_relay()
        self._listener = _listen(*_address(listen, "--listen"))
        self._stop_read, self._stop_write = os.pipe()
        os.set_blocking(self._stop_write, False)  # signal.set_wakeup_fd requires it

    @property
    def host(self) -> str:
        """The address it listens on."""
        return str(self._listener.getsockname()[0])

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS picked for port 0)."""
        return int(self._listener.getsockname()[1])

    @property
    def stop_fd(self) -> int:
        """Writing a byte here stops run(); safe from a signal's wakeup."""
        return self._stop_write

    def run(self) -> RelayStats:
        """Relay until stop() (the GIL is released meanwhile); every connection then closed."""
        # Each way carries half the round trip; the jitter's full width, as +-jitter/2 each way.
        try:
            stats = self._relay.serve(self._listener.fileno(), self._stop_read,
                                      self.upstream_host, self.upstream_port,
                                      round(self.rtt_ms * 500_000),
                                      round(self.jitter_ms * 1_000_000))
        except OSError as exc:
            if exc.errno == errno.ENOSYS:
                raise NetdelayError(NO_EPOLL_PWAIT2) from None
            raise
        return RelayStats(**stats)

    def stop(self) -> None:
        """Make run() return; from any thread."""
        with contextlib.suppress(BlockingIOError):  # a stop is already pending
            os.write(self._stop_write, b"s")

    def close(self) -> None:
        """Release the listening socket and the stop pipe."""
        self._listener.close()
        for fd in (self._stop_read, self._stop_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def run_until_signalled(relay: Relay, ready: Callable[[], None] = lambda: None) -> RelayStats:
    """relay.run() until SIGTERM, SIGINT or SIGHUP; from the main thread. `ready` runs once
    the handlers are in place (a parent told earlier could stop it before they were)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_until_signalled needs the main thread (signal handlers)")
    # The C loop holds no GIL, so a Python handler could not run until it returns: the
    # wakeup fd is written by the C-level handler itself, and the loop polls it.
    previous = {signum: signal.signal(signum, lambda _signum, _frame: None)
                for signum in STOP_SIGNALS
                if signal.getsignal(signum) is not signal.SIG_IGN}  # nohup stays nohup
    old_wakeup = signal.set_wakeup_fd(relay.stop_fd, warn_on_full_buffer=False)
    try:
        ready()
        return relay.run()
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
