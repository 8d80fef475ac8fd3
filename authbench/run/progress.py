"""Progress of a long run: cells done of total, the current cell, time left."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

BAR_WIDTH = 24


def clock(seconds: float) -> str:
    """m:ss (or h:mm:ss) for a number of seconds."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Prints one line per cell; on a terminal, a live bar while a cell measures."""

    def __init__(self, total: int, done: int, estimate: float, out: TextIO | None = None) -> None:
        self.total = total
        self.done = done
        self.remaining_estimate = estimate
        self.out = out if out is not None else sys.stderr
        self.started = time.monotonic()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._cell_estimate = 0.0

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def start_cell(self, name: str, estimate: float) -> None:
        self._cell_estimate = estimate
        elapsed = time.monotonic() - self.started
        self._write(f"[{self.done + 1}/{self.total}] {name}  "
                    f"(elapsed {clock(elapsed)}, about {clock(self.remaining_estimate)} left)\n")

    def note(self, text: str) -> None:
        self._write(f"      {text}\n")

    def measuring(self, seconds: float) -> None:
        if not self.out.isatty():
            return
        self._stop.clear()
        began = time.monotonic()

        def tick() -> None:
            while not self._stop.wait(0.5):
                share = min(1.0, (time.monotonic() - began) / seconds)
                filled = round(share * BAR_WIDTH)
                self._write(f"\r      [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                            f"{clock(time.monotonic() - began)} / {clock(seconds)}")

        self._ticker = threading.Thread(target=tick, daemon=True)
        self._ticker.start()

    def measured(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join(2)
            self._ticker = None
            self._write("\r" + " " * (BAR_WIDTH + 30) + "\r")

    def end_cell(self, status: str, reason: str = "") -> None:
        self.measured()
        self.done += 1
        self.remaining_estimate = max(0.0, self.remaining_estimate - self._cell_estimate)
        line = "      ok" if status == "ok" else f"      FAILED: {reason[:300]}"
        self._write(line + "\n")
