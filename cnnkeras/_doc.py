"""A small document model: headings, paragraphs, bullet lists, tables and images, rendered to
Markdown (report.md, comparison.md, the tables commands print) and to one self-contained HTML
page (images embedded, ``_html``). A report says what it holds once; how each format writes a
table or an image lives here.

Text is Markdown inline text: ``**bold**`` shows bold in Markdown and is dropped in HTML,
where everything else is escaped."""

from __future__ import annotations

import html
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cnnkeras import _html


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"  # what stands for a table without rows


@dataclass(frozen=True)
class Image:
    """A PNG: beside the Markdown file as ``name``, inside the HTML page."""

    name: str
    data: bytes
    alt: str = ""


@dataclass(frozen=True)
class Section:
    """Blocks that belong together; in HTML a ``<section>`` with this id (a link target)."""

    id: str
    blocks: tuple[Block, ...]


Block = Heading | Text | Bullets | Table | Image | Section


def table(header: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "none") -> Table:
    """A Table of ``rows`` (cells shown with ``str``)."""
    return Table(tuple(header), tuple(tuple(str(c) for c in row) for row in rows), empty)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table's lines (what a command prints)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def spread(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for one value) of repeated runs."""
    values = list(values)
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def spread_cell(mean: float, std: float, runs: int, fmt: str) -> str:
    """A table cell of repeated runs: the mean, and its spread when there is more than one."""
    return f"{mean:{fmt}} +- {std:{fmt}}" if runs > 1 else f"{mean:{fmt}}"


def _markdown(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text, ""]
    if isinstance(block, Text):
        return [block.text, ""] if block.text else []
    if isinstance(block, Bullets):
        return [*(f"- {item}" for item in block.items), ""]
    if isinstance(block, Table):
        if not block.rows:
            return [f"({block.empty})", ""]
        return [*markdown_table(block.header, block.rows), ""]
    if isinstance(block, Image):
        return [f"![{block.alt or block.name}]({block.name})", ""]
    return [line for inner in block.blocks for line in _markdown(inner)]


def markdown(blocks: Iterable[Block]) -> str:
    """The document as Markdown; images are referred to by their file names."""
    lines = [line for block in blocks for line in _markdown(block)]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def _inline(text: str) -> str:
    return html.escape(text.replace("**", ""))


def _html_of(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return [f"<h{block.level}>{_inline(block.text)}</h{block.level}>"]
    if isinstance(block, Text):
        return [f"<p>{_inline(block.text)}</p>"] if block.text else []
    if isinstance(block, Bullets):
        return ["<ul>", *(f"<li>{_inline(item)}</li>" for item in block.items), "</ul>"]
    if isinstance(block, Table):
        if not block.rows:
            return [f"<p>{html.escape(block.empty)}</p>"]
        return _html.table(block.header, block.rows)
    if isinstance(block, Image):
        return [_html.img(block.alt or block.name, block.data)]
    inner = [line for b in block.blocks for line in _html_of(b)]
    return [f'<section id="{html.escape(block.id)}">', *inner, "</section>"]


def html_page(title: str, blocks: Iterable[Block]) -> str:
    """The document as one HTML page that opens offline (images as data URIs)."""
    return _html.page(title, [line for block in blocks for line in _html_of(block)])


def images(blocks: Iterable[Block]) -> dict[str, bytes]:
    """Every image of the document by file name (to write beside the Markdown)."""
    found: dict[str, bytes] = {}
    for block in blocks:
        if isinstance(block, Image):
            found[block.name] = block.data
        elif isinstance(block, Section):
            found.update(images(block.blocks))
    return found
