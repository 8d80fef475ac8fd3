"""One mode's overload figures: the raw probes and samples, and the row they make."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from authbench.bench.h2load import H2loadResult

RECOVERED_RUN = 5  # consecutive probes that must all be back to normal
RECOVERY_BAR_S = 5.0
MB = 1024 * 1024


@dataclass(frozen=True)
class Probe:
    """One low-rate request: seconds since the load stopped, its status (0: none), ms."""

    at_s: float
    status: int
    ms: float


@dataclass(frozen=True)
class Sample:
    """The target's RSS and CPU seconds at a moment (seconds since the load started)."""

    at_s: float
    rss_bytes: int
    cpu_s: float


@dataclass(frozen=True)
class OverloadRow:
    """One mode's figures, as the table shows them."""

    name: str
    capacity_rps: float
    offered_rps: float
    delivered_rps: float
    ok_rps: float
    shed_share: float  # 503s over every request h2load logged
    other_5xx: int
    other_status: int  # answers that were neither 2xx nor 5xx
    errors: int  # streams that got no answer, and h2load's errored count
    timeouts: int
    ok_p50_ms: float | None
    ok_p99_ms: float | None
    rss_before_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    cpu_share: float  # target CPU seconds per second of load (1.0 = one core)
    others_share: float  # the target's cores busy with other work over the load (0..1)
    baseline_ms: float
    recovery_s: float | None
    is_alive: bool

    @property
    def delivered_share(self) -> float:
        return self.delivered_rps / self.offered_rps if self.offered_rps else 0.0

    @property
    def is_ok(self) -> bool:
        """Alive, no 5xx but 503, and back to normal within RECOVERY_BAR_S."""
        return (self.is_alive and self.other_5xx == 0 and self.recovery_s is not None
                and self.recovery_s <= RECOVERY_BAR_S)


def recovered_after(probes: list[Probe], threshold_ms: float,
                    run: int = RECOVERED_RUN) -> float | None:
    """The first probe within threshold that starts `run` 2xx probes with median within it.

    The median forgives one stray slow probe after recovery (the machine is shared);
    the first probe itself must be normal, so recovery is never dated to a slow one.
    """
    for index in range(len(probes) - run + 1):
        window = probes[index:index + run]
        if (window[0].ms <= threshold_ms and all(200 <= p.status < 300 for p in window)
                and statistics.median(p.ms for p in window) <= threshold_ms):
            return window[0].at_s
    return None


def summarize(name: str, capacity_rps: float, load: H2loadResult, samples: list[Sample],
              baseline: list[Probe], after: list[Probe], recovery_factor: float,
              is_alive: bool, cores_busy: float = float("nan")) -> OverloadRow:
    """One mode's row from its raw figures.

    cores_busy: the share of the target's cores that was busy over the load, all work
    counted; what the target did not spend of it is other work (another program).
    """
    logged = sum(load.log.statuses.values())
    failed = load.log.statuses.get(-1, 0)
    during = [s for s in samples if 0 <= s.at_s <= load.seconds]
    cpu = (during[-1].cpu_s - during[0].cpu_s) / (during[-1].at_s - during[0].at_s) \
        if len(during) > 1 and during[-1].at_s > during[0].at_s else 0.0
    baseline_ms = statistics.median(p.ms for p in baseline if 200 <= p.status < 300)
    return OverloadRow(
        name=name, capacity_rps=capacity_rps, offered_rps=load.offered_rps,
        delivered_rps=load.delivered_rps, ok_rps=load.count(200, 300) / load.seconds,
        shed_share=load.log.statuses.get(503, 0) / logged if logged else 0.0,
        other_5xx=load.count(500, 600) - load.log.statuses.get(503, 0),
        other_status=load.count(0, 200) + load.count(300, 500),
        errors=failed + load.errored, timeouts=load.timeout,
        ok_p50_ms=load.log.ok_p50_ms, ok_p99_ms=load.log.ok_p99_ms,
        rss_before_mb=samples[0].rss_bytes / MB if samples else 0.0,
        rss_peak_mb=max((s.rss_bytes for s in samples), default=0) / MB,
        rss_after_mb=samples[-1].rss_bytes / MB if samples else 0.0,
        cpu_share=cpu, others_share=max(0.0, cores_busy - cpu), baseline_ms=baseline_ms,
        recovery_s=recovered_after(after, recovery_factor * baseline_ms),
        is_alive=is_alive,
    )

