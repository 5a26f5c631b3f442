"""matplotlib on its Agg backend (no screen needed), and a figure as PNG bytes: what every
report's plots share (evaluation reports, training curves, search results)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed (pyplot keeps every open one alive)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def show_image(ax, image, title: str = "", **kwargs) -> None:
    """An image stretched to its own range (model input of any scaling, activation maps),
    grey when it has one channel, with a small title and no axes."""
    import numpy as np

    image = np.asarray(image, np.float64)
    lo, hi = image.min(), image.max()
    image = (image - lo) / (hi - lo) if hi > lo else image * 0
    kwargs.setdefault("cmap", "gray")
    ax.imshow(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image, **kwargs)
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def row_label(ax, text: str) -> None:
    """A label left of the first axes of a grid row."""
    ax.text(-0.12, 0.5, text, transform=ax.transAxes, ha="right", va="center", fontsize=8)


__all__ = ["plt", "png_bytes", "row_label", "show_image"]
