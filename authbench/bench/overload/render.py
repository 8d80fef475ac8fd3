"""bench-overload's rows as a Markdown table (lines, not prints)."""

from __future__ import annotations

from authbench.bench.overload.result import OverloadRow


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def format_markdown(rows: list[OverloadRow], skipped: dict[str, str]) -> list[str]:
    """The results table (and the modes left out, with why) as Markdown lines."""
    lines = ["| mode | capacity req/s | offered req/s | delivered req/s | 2xx req/s "
             "| 503 share | other 5xx | errors / timeouts | 2xx p50 / p99 ms "
             "| RSS before / peak / after MB | target CPU | other work on its CPU | baseline ms "
             "| recovered after | ok |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        recovery = "not within the watch" if r.recovery_s is None else f"{r.recovery_s:.1f} s"
        if not r.is_alive:
            recovery = "DIED"
        lines.append(
            f"| {r.name} | {r.capacity_rps:,.0f} | {r.offered_rps:,.0f} | "
            f"{r.delivered_rps:,.0f} ({r.delivered_share:.0%}) | {r.ok_rps:,.0f} | "
            f"{r.shed_share:.0%} | {r.other_5xx} | {r.errors} / {r.timeouts} | "
            f"{_ms(r.ok_p50_ms)} / {_ms(r.ok_p99_ms)} | "
            f"{r.rss_before_mb:.0f} / {r.rss_peak_mb:.0f} / {r.rss_after_mb:.0f} | "
            f"{r.cpu_share:.2f} | {r.others_share:.0%} | {r.baseline_ms:.2f} | {recovery} | "
            f"{'yes' if r.is_ok else 'NO'} |")
    lines += [f"- {name}: {'' if why.startswith('FAILED') else 'skipped, '}{why}"
              for name, why in skipped.items()]
    return lines
