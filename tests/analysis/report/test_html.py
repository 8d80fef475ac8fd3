"""report.html's pieces: the little Markdown it renders, and a page with nothing fetched."""

from __future__ import annotations

from analysis.report.html import markdown_html, standalone_html


def test_markdown_html_turns_tables_and_headings_into_html() -> None:
    page = markdown_html(["## Title", "", "Some <text>.", "", "| a | b |", "|---|---|",
                          "| 1 | 2 |", "- point"])
    assert page.startswith("<h2>Title</h2>")
    assert "<p>Some &lt;text&gt;.</p>" in page
    assert "<thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td>" in page
    assert "<li>point</li>" in page
    assert markdown_html(["**DISTURBED RUN: a <b>**"]) == ("<p><strong>DISTURBED RUN: a "
                                                         "&lt;b&gt;</strong></p>")
    assert markdown_html(["run `authbench run <x>` now"]) == ("<p>run <code>authbench run "
                                                             "&lt;x&gt;</code> now</p>")


def test_a_page_embeds_its_charts_and_fetches_nothing() -> None:
    page = standalone_html("authbench micro: x", "caption <1>", {"floor": ("Floor", b"png")},
                           [(["## Micro", "![Floor](charts/floor.svg)"], ["floor"])])
    assert "<title>authbench micro: x</title>" in page
    assert "<p class=caption>caption &lt;1&gt;</p>" in page
    assert "<h2>Micro</h2>" in page and "charts/floor.svg" not in page
    assert "id=chart-floor alt='Floor' src='data:image/png;base64,cG5n'" in page
    assert "http" not in page and "<script" not in page
