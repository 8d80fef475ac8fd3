"""Where an auth step's time goes: its wall time, its own CPU, and its store calls.

Every authenticated response (and /noauth, around an empty step) carries

    Server-Timing: auth;dur=<ms>, auth-cpu;dur=<ms>, store;dur=<ms>

- auth: wall time of the step. Under load it includes waiting on the event loop
  behind other requests while the step awaits a store call: latency, not cost.
- auth-cpu: CPU of the step's own synchronous segments. The thread's CPU clock runs
  on while the step is suspended and other requests run, so the CPU that passed
  while each store call was awaited is subtracted.
- store: wall time of the store calls the step awaited (round trip plus queueing).

A store marks each awaited call with `store_call()`; outside a timed step it costs
one context-variable read.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from types import TracebackType

_cpu = time.thread_time
_wall = time.perf_counter


class StepTimer:
    """Times one auth step; `stop()` freezes the three figures in seconds."""

    __slots__ = ("_cpu0", "_wall0", "awaited_cpu", "cpu", "store_wall", "wall")

    def __init__(self) -> None:
        self.awaited_cpu = 0.0
        self.store_wall = 0.0
        self.wall = 0.0
        self.cpu = 0.0
        self._wall0 = _wall()
        self._cpu0 = _cpu()

    def stop(self) -> None:
        self.cpu = max(0.0, _cpu() - self._cpu0 - self.awaited_cpu)
        self.wall = _wall() - self._wall0

    def header(self) -> str:
        """The Server-Timing header value (milliseconds, three decimals)."""
        return (f"auth;dur={self.wall * 1000:.3f}, auth-cpu;dur={self.cpu * 1000:.3f}, "
                f"store;dur={self.store_wall * 1000:.3f}")


_current: ContextVar[StepTimer | None] = ContextVar("authbench_step_timer", default=None)


class timed_step:
    """The auth step of one request: makes its StepTimer current for store calls."""

    __slots__ = ("_token", "timer")

    def __enter__(self) -> StepTimer:
        self.timer = StepTimer()
        self._token = _current.set(self.timer)
        return self.timer

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.timer.stop()
        _current.reset(self._token)


class store_call:
    """One awaited store call inside a timed step (a no-op outside one)."""

    __slots__ = ("_cpu0", "_timer", "_wall0")

    def __enter__(self) -> None:
        self._timer = _current.get()
        if self._timer is not None:
            self._wall0 = _wall()
            self._cpu0 = _cpu()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        timer = self._timer
        if timer is not None:
            timer.awaited_cpu += _cpu() - self._cpu0
            timer.store_wall += _wall() - self._wall0
