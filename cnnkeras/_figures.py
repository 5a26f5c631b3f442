"""matplotlib on its Agg backend (no screen needed), and a figure as PNG bytes: what every
report's plots share (evaluation reports, training curves, search results)."""

from __future__ import annotations

import io
from typing import NamedTuple

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def png_bytes(fig, tight: bool = True) -> bytes:
    """The figure as PNG bytes, cropped to what is drawn unless ``tight`` is False (the crop
    draws the figure twice); the figure is closed (pyplot keeps every open one alive)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


def _stretched(image) -> np.ndarray:
    """``image`` in float64 stretched to 0..1 over its own range (all 0 when flat)."""
    image = np.asarray(image, np.float64)
    lo, hi = image.min(), image.max()
    return (image - lo) / (hi - lo) if hi > lo else image * 0


def show_image(ax, image, title: str = "", **kwargs) -> None:
    """An image stretched to its own range (model input of any scaling, activation maps),
    grey when it has one channel, with a small title and no axes."""
    image = _stretched(image)
    kwargs.setdefault("cmap", "gray")
    ax.imshow(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image, **kwargs)
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def row_label(ax, text: str) -> None:
    """A label left of the first axes of a grid row."""
    ax.text(-0.12, 0.5, text, transform=ax.transAxes, ha="right", va="center", fontsize=8)


class Tile(NamedTuple):
    """One picture of a grid: an image of any scaling (stretched to its own range), its title,
    and a 0..1 heatmap of the same height and width laid over it (Grad-CAM), if any."""

    image: np.ndarray
    title: str = ""
    heat: np.ndarray | None = None


HEAT_ALPHA = 0.45  # the heatmap's share of each pixel, jet colours over the image
TITLE_INCHES = 0.34  # two lines of 7-point text above each image
FONT = 7


def in_rows(tiles: list, cols: int) -> list[list]:
    """``tiles`` in rows of ``cols``."""
    return [tiles[i : i + cols] for i in range(0, len(tiles), cols)]


def _rgb(tile: Tile) -> np.ndarray:
    image = _stretched(tile.image)
    if image.ndim == 2:
        image = image[..., None]
    image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    if tile.heat is not None:
        heat = plt.get_cmap("jet")(np.asarray(tile.heat, np.float64))[..., :3]
        image = (1 - HEAT_ALPHA) * image + HEAT_ALPHA * heat
    return image


def tiles_png(
    rows: list[list[Tile | None]],
    *,
    inches: tuple[float, float] = (2.0, 2.2),
    row_labels: list[str] | None = None,
    heading: str = "",
    empty: str = "",
) -> bytes:
    """Rows of titled images (``None``: a blank cell) as one picture in one axes, ``inches``
    (width, height) a cell, with a label left of each row and a heading above, if given.
    One image and its texts draw in a tenth of the time of an axes per image (a report draws
    three such grids; 25 axes took 1.3 s to draw and save here, BENCHMARKS.md)."""
    cols = max((len(row) for row in rows), default=0)
    tiles = [tile for row in rows for tile in row if tile is not None]
    width, height = inches
    if not tiles:
        fig = plt.figure(figsize=(max(cols, 1) * width, height))
        fig.text(0.5, 0.5, empty, ha="center", va="center", fontsize=12)
        return png_bytes(fig, tight=False)
    side = max(max(np.shape(t.image)[:2]) for t in tiles)  # an image's box, in its pixels
    per_inch = side / min(0.9 * width, height - TITLE_INCHES)
    cell_w, cell_h = round(width * per_inch), round(height * per_inch)
    foot = max(1, (cell_h - side - round(TITLE_INCHES * per_inch)) // 2)  # under each image
    grid = np.ones((len(rows) * cell_h, cols * cell_w, 3))
    label_in = 1.0 if row_labels else 0.0
    head_in = 0.3 if heading else 0.0
    fig_w, fig_h = cols * width + label_in, len(rows) * height + head_in
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((label_in / fig_w, 0, cols * width / fig_w, len(rows) * height / fig_h))
    for r, row in enumerate(rows):
        top = r * cell_h + cell_h - foot - side  # the top of this row's image boxes
        for c, tile in enumerate(row):
            if tile is None:
                continue
            image = _rgb(tile)
            h, w = image.shape[:2]
            y, x = top + (side - h) // 2, c * cell_w + (cell_w - w) // 2
            grid[y : y + h, x : x + w] = image
            ax.text(c * cell_w + cell_w / 2, top - 1, tile.title, ha="center", va="bottom",
                    fontsize=FONT)  # fmt: skip
    ax.imshow(grid, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    for r, label in enumerate(row_labels or []):
        y = 1 - (head_in + (r + 0.5) * height) / fig_h
        fig.text((label_in - 0.1) / fig_w, y, label, ha="right", va="center", fontsize=8)
    if heading:
        fig.text(0.5, 1 - head_in / 2 / fig_h, heading, ha="center", va="center", fontsize=9)
    return png_bytes(fig, tight=False)


__all__ = ["Tile", "in_rows", "plt", "png_bytes", "row_label", "show_image", "tiles_png"]
