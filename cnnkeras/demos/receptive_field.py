"""Receptive field: one 5x5 convolution against two stacked 3x3 ones."""

from __future__ import annotations

from collections.abc import Sequence

from cnnkeras.demos._blocks import blocks_demo
from cnnkeras.demos._harness import curves_png, result
from cnnkeras.demos._registry import SEEDS, register_demo


def receptive_field_held(rows: list[dict]) -> bool:
    """One 5x5, then two 3x3: fewer parameters, and validation accuracy within 0.01."""
    five, three = rows
    return three["params"] < five["params"] and three["_val"] >= five["_val"] - 0.01


@register_demo("receptive-field")
def receptive_field_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    channels: int = 64,
    size: int = 28,
    epochs: int = 5,
    lr: float = 1e-3,
    train_images: int | None = 2000,
    repeats: int = 1,
) -> dict:
    """One 5x5 convolution against two stacked 3x3 ones (the same 5x5 receptive field):
    parameters, MACs and CPU latency of the block (``channels`` in and out, ``size``
    square), and the accuracy of a small network built from each."""
    kinds = ("one 5x5", "two 3x3")
    rows, runs = blocks_demo(kinds, seeds, channels, size, epochs, lr, train_images, repeats)
    five, three = rows
    for row in rows:
        row["receptive field"] = 5
    verdict = (
        f"two 3x3 have {three['params'] / five['params']:.2f}x the parameters and "
        f"{three['MACs'] / five['MACs']:.2f}x the MACs of one 5x5, run in "
        f"{three['latency ms'] / five['latency ms']:.2f}x its time here, and the network "
        f"reached {three['_val']:.3f} against {five['_val']:.3f}"
    )
    return result(
        "receptive-field",
        ["block", "receptive field", "params", "MACs", "latency ms", "val accuracy"],
        rows,
        receptive_field_held(rows),
        verdict,
        curves_png({"val_accuracy": runs, "accuracy": runs}, "one 5x5 against two 3x3"),
    )
