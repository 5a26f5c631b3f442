"""Batch norm: the same VGG-style network with and without it, at a usual and a high rate."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import keras

from cnnkeras.demos._harness import check, curves_png, last, load_digits_28, measure, pm, result
from cnnkeras.demos._registry import SEEDS, register_demo


def vgg_style(batch_norm: bool, width: int = 16) -> keras.Model:
    """Two VGG blocks of two 3x3 convolutions (``width``, 2 x ``width``) with batch norm
    between each convolution and its ReLU or not, then global average pooling and softmax.
    (A flatten head puts a 1,568-input dense layer without batch norm last, which diverges
    at a high rate whatever comes before it: measured, it hid the effect.)"""
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for filters in (width, width, None, 2 * width, 2 * width, None):
        if filters is None:
            x = keras.layers.MaxPooling2D()(x)
            continue
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def _epochs_to(val_accuracy: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(val_accuracy) if v >= target), None)


def batchnorm_held(rows: list[dict]) -> bool:
    """Rows alternate without and with batch norm, one pair per learning rate: with it,
    fewer epochs to the target at every rate, and a better final accuracy at the highest."""
    pairs = list(zip(rows[::2], rows[1::2], strict=True))
    faster = all(bn["_epochs"] < plain["_epochs"] for plain, bn in pairs)
    return faster and pairs[-1][1]["_final"] > pairs[-1][0]["_final"]


@register_demo("batchnorm")
def batchnorm_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    epochs: int = 6,
    lrs: Sequence[float] = (0.01, 0.1),
    target: float = 0.9,
    train_images: int | None = None,
    width: int = 16,
) -> dict:
    """The same VGG-style network with and without batch norm, trained with SGD (momentum
    0.9; Ioffe and Szegedy's setting: Adam would hide part of the effect by scaling each
    step) at a usual and a high learning rate: epochs to reach ``target`` validation
    accuracy (not reached: counted as epochs + 1), and the final accuracy."""
    check(seeds, epochs=epochs, width=width)
    data = load_digits_28(train_images)
    runs, rows = {}, []
    for lr in lrs:
        for bn in (False, True):
            name = f"{'with' if bn else 'without'} batch norm, lr {lr:g}"
            variant = {name: lambda bn=bn: vgg_style(bn, width)}
            runs.update(measure(variant, seeds, data, epochs=epochs, lr=lr, optimizer="sgd"))
            reached = [_epochs_to(c.val_accuracy, target) for c in runs[name]]
            missed = sum(r is None for r in reached)
            counted = [r or epochs + 1 for r in reached]
            final, final_mean = last(runs[name])
            rows.append(
                {
                    "batch norm": "yes" if bn else "no",
                    "lr": lr,
                    f"epochs to {target:g}": pm(counted, ".1f")
                    + (f" ({missed} of {len(reached)} never)" if missed else ""),
                    "final val accuracy": final,
                    "_epochs": statistics.mean(counted),
                    "_final": final_mean,
                }
            )
    pairs = [(rows[2 * i], rows[2 * i + 1]) for i in range(len(lrs))]  # (without, with)
    verdict = "; ".join(
        f"at lr {lr:g} batch norm took {bn['_epochs']:.1f} epochs to {target:g} against "
        f"{plain['_epochs']:.1f} and ended at {bn['_final']:.3f} against {plain['_final']:.3f}"
        for lr, (plain, bn) in zip(lrs, pairs, strict=True)
    )
    return result(
        "batchnorm",
        ["batch norm", "lr", f"epochs to {target:g}", "final val accuracy"],
        rows,
        batchnorm_held(rows),
        verdict,
        curves_png({"val_accuracy": runs, "accuracy": runs}, "batch norm (SGD)"),
    )
