"""report.html: one self-contained page, charts embedded as PNG data URIs, nothing fetched."""

from __future__ import annotations

import base64
import html
import re

from analysis.report.data import Report
from analysis.report.formatting import number
from analysis.report.sections import TITLES, method_lines, purpose_line, top_sections

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f0f3f7} .verdict strong{font-weight:700} .failed{color:#a00}
.purpose{font-size:1.05em} code{background:#f3f3f3;padding:0 3px}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0} .caption{color:#666;font-size:0.85em}
"""

CODE = re.compile(r"`([^`]+)`")  # a command in backticks
OUTCOME = re.compile(r"^([^:(]+?)(?=:| \()")  # a verdict's outcome: before its first : or (
Pngs = dict[str, tuple[str, bytes]]  # chart name -> (title, PNG bytes)
# A section: its Markdown lines and the names (in Pngs) of the charts drawn after them.
HtmlSection = tuple[list[str], list[str]]


def _inline(text: str) -> str:
    """Escaped text, a command in backticks as code."""
    return CODE.sub(r"<code>\1</code>", html.escape(text))


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def markdown_html(lines: list[str]) -> str:
    """The few Markdown forms the sections use (headings, tables, bullets, paragraphs)."""
    out: list[str] = []
    table: list[list[str]] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
            continue
        if table:
            out.append(_table(table[0], [r for r in table[1:] if not set("".join(r)) <= set("-|")]))
            table = []
        if line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")))
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<ul><li>{_inline(line[2:])}</li></ul>")
        elif line.startswith("**") and line.endswith("**") and len(line) > 4:
            out.append(f"<p><strong>{_inline(line[2:-2])}</strong></p>")  # a warning
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    return "\n".join(out)


def _figure(name: str, pngs: Pngs) -> str:
    title, png = pngs[name]
    data = base64.b64encode(png).decode()
    return (f"<figure><img id=chart-{name} alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{data}'></figure>")


def _head(title: str, caption: str) -> list[str]:
    return [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>", f"<p class=caption>{html.escape(caption)}</p>"]


def _sections(sections: list[HtmlSection], pngs: Pngs) -> list[str]:
    parts = []
    for lines, names in sections:
        parts.append(markdown_html([line for line in lines if not line.startswith("![")]))
        parts += [_figure(name, pngs) for name in names if name in pngs]
    return parts


def _verdict_table(report: Report) -> str:
    """The article's table, each verdict's outcome ('holds', 'depends on the store': the words
    before its first colon or bracket) bold."""
    rows = []
    for v in report.verdicts:
        outcome = OUTCOME.match(v.verdict)
        verdict = (f"<strong>{html.escape(outcome.group(1))}</strong>"
                   f"{_inline(v.verdict[outcome.end():])}" if outcome else _inline(v.verdict))
        rows.append(f"<tr><td>{html.escape(v.row)}</td><td>{html.escape(v.claim)}</td>"
                    f"<td>{_inline(v.measured)}</td><td class=verdict>{verdict}</td></tr>")
    head = "".join(f"<th>{name}</th>" for name in
                   ("row", "the article's claim", "measured here", "verdict"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _top(report: Report) -> list[str]:
    """The sections the report opens with (report_sections.top_sections), the article's
    table as a table of its own so its verdicts stand out."""
    parts = []
    for name, lines in top_sections(report):
        parts.append(f"<h2 id={name}>{html.escape(TITLES[name])}</h2>")
        if name != "article":
            parts.append(markdown_html(lines))
            continue
        parts.append(_verdict_table(report))
        parts.append(markdown_html([line for line in lines if not line.startswith("|")]))
    return parts


def render_html(report: Report, pngs: Pngs, sections: list[HtmlSection] | None = None) -> str:
    """A run's report page: what the run is for and the sections that answer it, the
    charts, then sections (drawn after the charts that belong to none of them), the cells
    and the method."""
    sections = sections or []
    placed = {name for _, names in sections for name in names}
    parts = [*_head(f"authbench report: {report.run_id}", report.caption),
             f"<p class=purpose>{html.escape(purpose_line(report))}</p>",
             *_top(report),
             "<h2 id=charts>Charts</h2>",
             *(_figure(name, pngs) for name in pngs if name not in placed),
             *_sections(sections, pngs)]
    cells = [[c["cell"], "ok" if c["status"] == "ok" else f"failed: {c['reason']}",
              number(c.get("rps"), 0), number(c.get("p50_ms"), 2), number(c.get("p99_ms"), 2),
              number(c.get("p99_9_ms"), 2), number(c.get("max_ms"), 2),
              number(c.get("auth_p50_ms"), 3), number(c.get("cpu_ms_per_request"), 3)]
             for c in report.cells]
    parts += ["<h2 id=details>Details</h2>",
              _table(["cell", "status", "req/s", "p50", "p99", "p99.9", "max", "auth p50",
                      "CPU ms/req"], cells,
                     ["" if c["status"] == "ok" else "failed" for c in report.cells])]
    method = method_lines(report)
    parts.append("<h2 id=method>Method</h2><ul>")
    parts += [f"<li>{html.escape(line[2:])}</li>" for line in method if line.startswith("- ")]
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def standalone_html(title: str, caption: str, pngs: Pngs, sections: list[HtmlSection]) -> str:
    """The page of a folder that holds only `authbench micro` or `bench-revocation` results."""
    return "\n".join([*_head(title, caption), *_sections(sections, pngs), "</body></html>"])
