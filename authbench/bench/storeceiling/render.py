"""bench-store's result as terminal tables (lines, not prints)."""

from __future__ import annotations

import math
from typing import Any

from analysis.store.ceiling import parse_store_ceiling, store_capacity_rps


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _shares(repeats: list[dict[str, Any]], key: str) -> str:
    """The range of a CPU share over the repeats."""
    values = [r[key] for r in repeats if r.get(key) is not None]
    return f"{_share(min(values))}-{_share(max(values))}" if values else "-"


def _disturbed(op: dict[str, Any]) -> str:
    count = op.get("disturbed_repeats", 0)
    return f" ({count} of {len(op['repeats'])} repeats shared CPUs with other work)" \
        if count else ""


def format_result(result: dict[str, Any]) -> list[str]:
    """The operations' ceilings, then the requests/s one store serves per mode."""
    lines = [f"{'store':<9}{'operation':<18}{'ops/s (median)':>15}{'range':>20}"
             f"{'CPU µs/op':>10}{'store CPU':>11}{'client CPU':>12}  limited by"]
    for store, entry in result["stores"].items():
        for name, op in entry["operations"].items():
            cost = op["cpu_us_per_op_median"]
            spread = f"{min(op['ops_per_s']):,.0f}-{max(op['ops_per_s']):,.0f}"
            lines.append(
                f"{store:<9}{name:<18}{op['ops_per_s_median']:>15,.0f}{spread:>20}"
                f"{'-' if cost is None else f'{cost:.2f}':>10}"
                f"{_shares(op['repeats'], 'store_cpu_share'):>11}"
                f"{_shares(op['repeats'], 'client_cpu_share'):>12}  {op['limited_by']}"
                + _disturbed(op))
    for store, reason in result["skipped"].items():
        lines.append(f"{store:<9}not measured: {reason}")
    ceiling = parse_store_ceiling(result)
    lines += ["", f"{'mode':<28}{'requests/s one store serves':>28}"]
    unbounded = []
    for mode in ceiling.modes:
        rps = store_capacity_rps(ceiling, mode)
        if rps is None:
            lines.append(f"{mode:<28}{'not measured':>28}")
        elif math.isinf(rps):
            unbounded.append(mode)
        else:
            lines.append(f"{mode:<28}{rps:>28,.0f}")
    lines.append(f"no store call per request (no store bound): {', '.join(unbounded)}")
    lines.append("sessions: each active session's touch (once per interval) comes first; "
                 "see analysis.store.ceiling.store_capacity_rps(active_sessions=...)")
    return lines
