"""Self-contained HTML pages: PNGs embedded as data URIs, plain tables, one stylesheet. What
every HTML report shares (evaluation reports, comparisons), so each opens offline as one file."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
    "img{max-width:100%}"
)


def img(name: str, data: bytes) -> str:
    """A PNG as an <img> tag that carries its bytes."""
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{name}" src="data:image/png;base64,{b64}">'


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """An HTML table of text cells (markdown's ** emphasis dropped, the rest escaped)."""
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        cells = "".join(f"<td>{html.escape(str(c).replace('**', ''))}</td>" for c in row)
        out.append(f"<tr>{cells}</tr>")
    return [*out, "</table>"]


def page(title: str, body: Iterable[str]) -> str:
    """A whole HTML document around ``body``'s fragments."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
