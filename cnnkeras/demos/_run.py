"""Running a demo by name, and its result as ``cnnkeras demo`` prints it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnkeras import _doc, _io
from cnnkeras.demos._registry import SEEDS, demo_function


def run_demo(
    name: str, seeds: Sequence[int] = SEEDS, *, plot: str | Path | None = None, **options
) -> dict:
    """Run the demo ``name`` (a key of DEMOS) with its ``options``; with ``plot``, write its
    figure there as PNG (the result's ``plot``)."""
    result = demo_function(name)(tuple(seeds), **options)
    png = result.pop("png")
    if plot:
        _io.write_bytes(Path(plot), png)
        result["plot"] = str(plot)
    return result


def demo_text(result: dict) -> str:
    """The claim, the table, and the verdict."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    columns = result["columns"]
    lines = [f"claim: {result['claim']}", ""]
    lines += _doc.markdown_table(columns, ([cell(r[c]) for c in columns] for r in result["rows"]))
    held = "held" if result["held"] else "did not hold"
    lines += ["", f"{held}: {result['verdict']}"]
    if result.get("plot"):
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines)
