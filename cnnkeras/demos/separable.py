"""Depthwise-separable convolution against standard convolution."""

from __future__ import annotations

from collections.abc import Sequence

from cnnkeras.demos._blocks import blocks_demo
from cnnkeras.demos._harness import curves_png, result
from cnnkeras.demos._registry import SEEDS, register_demo


def separable_held(rows: list[dict]) -> bool:
    """Standard, then separable: under half the MACs, validation accuracy within 0.02."""
    standard, separable = rows
    cheap = separable["MACs"] / standard["MACs"] < 0.5
    return cheap and separable["_val"] >= standard["_val"] - 0.02


@register_demo("separable")
def separable_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    channels: int = 64,
    size: int = 28,
    epochs: int = 5,
    lr: float = 1e-3,
    train_images: int | None = 2000,
    repeats: int = 2,
) -> dict:
    """Standard against depthwise-separable 3x3 convolutions (``channels`` in and out):
    parameters, MACs and CPU latency of one layer, the lecture's ratio 1/N + 1/9, and the
    accuracy of a small network built from each."""
    kinds = ("standard 3x3", "separable 3x3")
    rows, runs = blocks_demo(kinds, seeds, channels, size, epochs, lr, train_images, repeats)
    standard, separable = rows
    formula = 1 / channels + 1 / 9
    ratio = separable["MACs"] / standard["MACs"]
    verdict = (
        f"separable costs {ratio:.3f}x the MACs (the lecture's 1/N + 1/9 = {formula:.3f}), "
        f"{separable['params'] / standard['params']:.3f}x the parameters, runs in "
        f"{separable['latency ms'] / standard['latency ms']:.2f}x the time on this CPU, and "
        f"the network reached {separable['_val']:.3f} against {standard['_val']:.3f}"
    )
    return result(
        "separable",
        ["block", "params", "MACs", "latency ms", "val accuracy"],
        rows,
        separable_held(rows),
        verdict,
        curves_png({"val_accuracy": runs, "accuracy": runs}, "standard against separable"),
        mac_ratio=ratio,
        formula=formula,
    )
