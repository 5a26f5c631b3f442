"""The guides shipped in the package (``cnnkeras docs``): one Markdown file a topic, readable
offline and on GitHub, where the README links to them."""

from __future__ import annotations

from pathlib import Path

from cnnkeras.errors import UserError

FOLDER = Path(__file__).parent


def guides() -> dict[str, str]:
    """Topic -> the guide's title (its first line), in name order."""
    return {
        path.stem: path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        for path in sorted(FOLDER.glob("*.md"))
    }


def guide(topic: str) -> str:
    """The guide ``topic`` as Markdown."""
    path = FOLDER / f"{topic}.md"
    if topic not in guides():
        raise UserError(f"no guide {topic!r}; the guides are {', '.join(guides())}")
    return path.read_text(encoding="utf-8")


def guides_text(found: dict[str, str]) -> str:
    width = max(map(len, found))
    lines = [f"  {topic:<{width}}  {title}" for topic, title in found.items()]
    return "\n".join(["guides (cnnkeras docs TOPIC):", *lines])
