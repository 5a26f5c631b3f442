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


__all__ = ["plt", "png_bytes"]
