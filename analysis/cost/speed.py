"""The machine's speed over a run, from its speed probes (<run>/speed.json).

The runner probes every CPU before the load phase, before each round of windows and at
the end (authbench/run/speedprobe.py): a fixed workload's CPU ns per iteration, lower is
faster. CPU time, like the cost figures: what the machine does per instruction that
hour (frequency, the host's neighbours), not how much of a core another program took
(that is wall time over CPU time, the probe's `share` of the core, and DISTURBED's
business).

A probe's speed relative to the run's first is `start / probe`: 0.8 ran 20 % slower. A
probe that moved more than FLAG_OVER from the start is flagged: the windows after it
ran on a different machine. Two runs ran at different speeds when their speeds (the
median probe of each, not the start's alone: a run's figures are medians over repeats
spread over the whole run) differ by more than SPEED_NOISE, beyond what repeated probes
of one machine moved. Runs from before the probe have no speed.json: every function here
says "not measured" (or None) for them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.data.formats import SPEED, load_json

SPEED_FILE = "speed.json"
FLAG_OVER = 0.10  # a probe this far from the start marks the round it opened
# Two runs' speeds further apart than this ran on machines of different speed. Measured
# on the 2-core KVM host this was built on, beside other jobs (load 2 to 40), over an
# hour: the median of 5 probes against another taken right after moved by 1.5 % (median),
# 5.0 % (95th percentile), 11.3 % (max) over 420 pairs: the probe's own noise. Medians 2
# to 60 minutes apart moved by 3.0 %, 9.5 % and 15.3 % (378 pairs): the machine drifted
# too (30-probe medians: 11 % over the hour). Another CPU-bound workload (PyJWT HS256
# decode) cost 4.3 to 6.1 times the probe's over 50 minutes (correlation 0.73): the
# probe resolves shifts like the 1.5x it was built for, not a few per cent.
SPEED_NOISE = 0.10
SHARED_BELOW = 0.80  # the probe got less than this share of a core: another program ran
NOT_MEASURED = "Machine speed: not measured (no speed.json: a run from before the speed probe)."


@dataclass(frozen=True)
class SpeedProbe:
    """One probe of a run: the machine's CPU ns per iteration (median over its CPUs) and
    the smallest share of a core it got (its CPU time over its wall time)."""

    label: str
    at: str
    ns_per_iteration: float
    share: float
    per_cpu: dict[str, float]

    @classmethod
    def of(cls, probe: dict[str, Any]) -> SpeedProbe:
        cpus: dict[str, Any] = probe.get("cpus", {})
        per_cpu = {cpu: float(v["cpu_ns_per_iteration"]) for cpu, v in cpus.items()}
        shares = [float(v["cpu_ns_per_iteration"]) / float(v["ns_per_iteration"])
                  for v in cpus.values() if v.get("ns_per_iteration")]
        return cls(str(probe.get("label", "")), str(probe.get("at", "")),
                   statistics.median(per_cpu.values()), min(shares, default=1.0), per_cpu)


def load_speed(run: Path | str) -> list[SpeedProbe]:
    """A run's probes in the order taken; [] when it has no speed.json (or no probe)."""
    path = Path(run) / SPEED_FILE
    if not path.is_file():
        return []
    return [SpeedProbe.of(p) for p in load_json(path, SPEED).get("probes", []) if p.get("cpus")]


@dataclass(frozen=True)
class SpeedSummary:
    """How a run's speed moved: each probe relative to the first."""

    probes: tuple[SpeedProbe, ...]

    @property
    def start(self) -> SpeedProbe:
        return self.probes[0]

    @property
    def end(self) -> SpeedProbe:
        return self.probes[-1]

    def relative(self, probe: SpeedProbe) -> float:
        """probe's speed over the start's (0.8: 20 % slower)."""
        return self.start.ns_per_iteration / probe.ns_per_iteration

    @property
    def largest_move(self) -> float:
        """The largest move from the start, as a fraction (signed: negative is slower)."""
        return max((self.relative(p) - 1 for p in self.probes), key=abs)

    @property
    def spread(self) -> float:
        """The fastest probe over the slowest, minus one: how far speed moved in the run."""
        speeds = [p.ns_per_iteration for p in self.probes]
        return max(speeds) / min(speeds) - 1

    @property
    def flagged(self) -> list[tuple[SpeedProbe, float]]:
        """Probes that moved more than FLAG_OVER from the start, with the move."""
        return [(p, self.relative(p) - 1) for p in self.probes[1:]
                if abs(self.relative(p) - 1) > FLAG_OVER]

    @property
    def speed(self) -> float:
        """The run's typical CPU ns per iteration: the median probe (a run's figures are
        medians over repeats spread over the whole run, not the first minute's)."""
        return statistics.median(p.ns_per_iteration for p in self.probes)


def summarize(run: Path | str) -> SpeedSummary | None:
    """A run's speed summary; None when its speed was not measured."""
    probes = load_speed(run)
    return SpeedSummary(tuple(probes)) if probes else None


def _ns(value: float) -> str:
    return f"{value:,.0f} ns"


def speed_lines(run: Path | str) -> list[str]:
    """What the report says about the machine's speed over the run."""
    summary = summarize(run)
    if summary is None:
        return [NOT_MEASURED]
    start, end = summary.start, summary.end
    if len(summary.probes) == 1:
        return [f"Machine speed: one probe ({start.label}, {_ns(start.ns_per_iteration)} of CPU "
                "per probe iteration): its movement during the run was not measured."]
    lines = [f"Machine speed: moved at most {100 * abs(summary.largest_move):.1f} % from the "
             f"start during the run ({len(summary.probes)} probes, CPU per probe iteration: "
             f"start {_ns(start.ns_per_iteration)}, end {_ns(end.ns_per_iteration)}; "
             f"fastest to slowest {100 * summary.spread:.1f} %)."]
    if summary.flagged:
        moves = "; ".join(f"{probe.label} {100 * move:+.1f} %"
                          for probe, move in summary.flagged)
        lines.append(f"  Moved over {100 * FLAG_OVER:.0f} % from the start (flagged; the "
                     f"windows after each ran on a faster or slower machine): {moves}.")
    shared = [probe for probe in summary.probes if probe.share < SHARED_BELOW]
    if shared:
        lines.append("  Another program was running (the probe's share of a core, wall time "
                     "over CPU time): " + "; ".join(f"{probe.label} {100 * probe.share:.0f} %"
                                                   for probe in shared) + ".")
    return lines


def speed_ratio(run_a: Path | str, run_b: Path | str) -> float | None:
    """B's speed over A's (0.66: B ran 0.66x as fast), each run's median probe; None
    when either run has no speed.json."""
    a, b = summarize(run_a), summarize(run_b)
    if a is None or b is None:
        return None
    return a.speed / b.speed


def is_different_speed(ratio: float | None) -> bool:
    """Two runs' machines differed in speed beyond the probe's own noise."""
    return ratio is not None and abs(ratio - 1) > SPEED_NOISE
