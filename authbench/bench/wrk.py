"""Run wrk (the independent load tool) and read its figures, incl. Server-Timing sums."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Sums the auth;dur of every response per thread, and prints one JSON line at the end.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) auth_count = 0; auth_sum = 0 end
function response(status, headers, body)
  local timing = headers["server-timing"] or headers["Server-Timing"]
  if timing then
    local dur = string.match(timing, "dur=([%d%.]+)")
    if dur then auth_sum = auth_sum + tonumber(dur); auth_count = auth_count + 1 end
  end
end
function done(summary, latency, requests)
  local count, sum = 0, 0
  for _, thread in ipairs(threads) do
    count = count + thread:get("auth_count"); sum = sum + thread:get("auth_sum")
  end
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"auth_count":%d,"auth_ms_sum":%.6f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), count, sum))
end
"""


class WrkMissing(RuntimeError):
    """wrk is not installed."""


def require_wrk() -> str:
    """wrk's path; WrkMissing, with how to install it, when it is not on PATH."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    return wrk


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles and the mean server-side auth time."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    auth_ms_mean: float | None

    @property
    def rps(self) -> float:
        """Requests per second over the measured duration."""
        return self.requests / self.seconds


def run_wrk(
    url: str,
    seconds: int,
    connections: int = 32,
    threads: int = 1,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """Run wrk against url; raise WrkMissing or RuntimeError with wrk's output."""
    wrk = require_wrk()
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "timing.lua"
        script.write_text(WRK_SCRIPT)
        command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                   "-s", str(script), "--latency"]
        for name, value in (headers or {}).items():
            command += ["-H", f"{name}: {value}"]
        done = subprocess.run([*command, url], capture_output=True, text=True,
                              timeout=seconds + 30, check=False)
    marker = next((line for line in done.stdout.splitlines() if line.startswith("WRK_JSON ")),
                  None)
    if done.returncode != 0 or marker is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    raw = json.loads(marker.removeprefix("WRK_JSON "))
    count = raw["auth_count"]
    return WrkResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        non_2xx=raw["non_2xx"],
        socket_errors=raw["socket_errors"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        auth_ms_mean=raw["auth_ms_sum"] / count if count else None,
    )
