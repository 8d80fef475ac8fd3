"""bench-revocation's result as terminal tables (lines, not prints)."""

from __future__ import annotations

from typing import Any


def format_result(result: dict[str, Any]) -> list[str]:
    """The result as readable tables."""
    lines = [f"{'store':<9}{'entries':>11}{'MB':>10}{'B/entry':>9}{'insert s':>10}"
             f"{'present µs':>12}{'absent µs':>11}"]
    for r in result["growth"]:
        lines.append(f"{r['store']:<9}{r['entries']:>11,}{r['bytes'] / 1e6:>10.2f}"
                     f"{r['bytes_per_entry'] or 0:>9.0f}{r['insert_seconds']:>10.2f}"
                     f"{r['check_present_us']:>12.1f}{r['check_absent_us']:>11.1f}")
    for s in result["steady_state"]:
        lines += ["", f"steady state ({s['store']}): {s['rate_per_s']:,.0f} logouts/s "
                  f"(achieved {s['rate_achieved_per_s'] or 0:,.0f}), T = {s['ttl_s']:g} s: "
                  f"plateau {s['plateau_entries'] or 0:,.0f} entries, model R*T/2 = "
                  f"{s['model_entries']:,.0f}, ~{(s['plateau_bytes'] or 0) / 1e6:.2f} MB"]
    lines += ["", f"{'store':<9}{'operation':<22}{'k':>6}{'median ms':>11}{'± stdev':>9}"
              f"{'reps':>6}{'removed':>9}"]
    for r in result["logout_all"]:
        k = "-" if r["k"] is None else f"{r['k']:,}"
        removed = "-" if r["removed"] is None else f"{r['removed']:,}"
        lines.append(f"{r['store']:<9}{r['op']:<22}{k:>6}{r['median_ms']:>11.3f}"
                     f"{r['stdev_ms']:>9.3f}{r['reps']:>6}{removed:>9}")
    return lines
