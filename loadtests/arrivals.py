"""Open-model load: requests leave on a fixed schedule, whatever the answers take.

A window with a rate (loadtests.control) lays out arrivals every 1/rate seconds from
its start to its end. Each user is one slot: it takes the next arrival, sleeps until
its time, sends, and takes the next once the answer is in. While every slot is busy,
arrivals wait in the schedule and go out late; that lateness is the schedule's lag.
So the users are the bound on requests in flight, and a server that stalls cannot
slow the schedule down, as it does a closed loop (coordinated omission).

loadtests.hdr records each request's latency from its intended send time (the
corrected latency, as wrk2 does), its service time from the actual send, and the lag.
A request's intended time is that of its user's arrival, so each scenario task that
runs under a rate sends exactly one request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import gevent
from gevent import Greenlet

from loadtests import control


@dataclass(frozen=True)
class Arrival:
    """One scheduled request: when it was meant to leave, and whether it is measured."""

    schedule: Schedule
    intended: float  # Unix time
    is_measured: bool  # inside [measure_from, measure_until)


@dataclass
class Schedule:
    """One window's arrivals in this process, and how many were taken and in flight."""

    window: control.Window
    taken: int = 0  # arrivals handed to users so far
    in_flight: int = 0
    in_flight_max: int = 0
    first_measured: int = field(init=False)  # the first arrival inside the measured span
    end: int = field(init=False)  # the arrivals laid out before the window closes

    def __post_init__(self) -> None:
        self.first_measured = self.index(self.window.measure_from)
        self.end = self.index(self.window.measure_until)

    def index(self, at: float) -> int:
        """How many arrivals the schedule lays out before `at`."""
        return max(0, math.ceil((at - self.window.start) * self.window.rate - 1e-6))

    @property
    def taken_measured(self) -> int:
        """Arrivals handed out inside [measure_from, measure_until)."""
        return max(0, self.taken - self.first_measured)

    def take(self) -> Arrival | None:
        """The next arrival, or None once the schedule is used up."""
        if self.taken >= self.end:
            return None
        number = self.taken
        self.taken += 1
        return Arrival(self, self.window.start + number / self.window.rate,
                       number >= self.first_measured)

    def scheduled_measured(self) -> int:
        """How many arrivals the schedule lays out inside the measured span."""
        return self.end - self.first_measured


_schedules: dict[int, Schedule] = {}
_turns: dict[Greenlet, Arrival] = {}  # user -> its arrival in flight


def schedule_of(window: control.Window) -> Schedule | None:
    """The window's schedule if its users have started on it (None in a closed loop)."""
    schedule = _schedules.get(window.seq)
    return schedule if schedule is not None and schedule.window is window else None


def _schedule_for(window: control.Window) -> Schedule | None:
    """The window's schedule, made when its first user asks (None in a closed loop)."""
    if window.rate <= 0:
        return None
    schedule = schedule_of(window)
    if schedule is None:
        _schedules.clear()  # one window at a time: the last one's is done with
        schedule = _schedules[window.seq] = Schedule(window)
    return schedule


def _finish_turn(user: Greenlet) -> None:
    arrival = _turns.pop(user, None)
    if arrival is not None:
        arrival.schedule.in_flight -= 1


def next_turn() -> None:
    """Block this user until it may send: an open gate (closed loop), or its next arrival.

    Called where a user would wait (on_start's end, wait_time); it also ends the user's
    previous arrival, whose request is done by then.
    """
    user = gevent.getcurrent()
    _finish_turn(user)
    while True:
        control.wait_at_gate()
        window = control.current
        schedule = None if window is None else _schedule_for(window)
        if schedule is None:
            return
        arrival = schedule.take()
        if arrival is None:  # every arrival is out: wait for the gate to close
            gevent.sleep(max(0.005, schedule.window.measure_until - time.time()))
            continue
        gevent.sleep(max(0.0, arrival.intended - time.time()))
        _turns[user] = arrival
        schedule.in_flight += 1
        schedule.in_flight_max = max(schedule.in_flight_max, schedule.in_flight)
        return


def current_arrival() -> Arrival | None:
    """The calling user's arrival in flight, if any."""
    return _turns.get(gevent.getcurrent())
