"""What the two block demos share (receptive field, separable): a block under test, ``channels``
in and out, measured alone (parameters, MACs, CPU latency) and inside a small classifier."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from cnnkeras._timing import median_ms
from cnnkeras.demos._harness import Curves, check, last, load_digits_28, measure
from cnnkeras.models import count_macs


def _conv(x, filters: int, kernel: int, batch_norm: bool, depthwise: bool = False):
    """A convolution and its ReLU, with batch norm between them when asked."""
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, padding="same", use_bias=not batch_norm)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=not batch_norm)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def block(kind: str, x, channels: int, batch_norm: bool = False):
    """The block under test, ``channels`` in and out. Without batch norm its parameters and
    MACs are the lecture's formulas; the trained networks put batch norm after every
    convolution in both variants, as MobileNet does (without it the separable network
    stayed at chance for 5 epochs: measured)."""
    if kind == "one 5x5":
        return _conv(x, channels, 5, batch_norm)
    if kind == "two 3x3":
        return _conv(_conv(x, channels, 3, batch_norm), channels, 3, batch_norm)
    if kind == "standard 3x3":
        return _conv(x, channels, 3, batch_norm)
    if kind == "separable 3x3":  # depthwise 3x3 then pointwise 1x1 (MobileNet v1)
        if not batch_norm:
            return keras.layers.ReLU()(keras.layers.SeparableConv2D(channels, 3, padding="same")(x))
        return _conv(_conv(x, channels, 3, True, depthwise=True), channels, 1, True)
    raise ValueError(kind)


def block_model(kind: str, size: int, channels: int, repeats: int = 1) -> keras.Model:
    inputs = keras.Input((size, size, channels))
    x = inputs
    for _ in range(repeats):
        x = block(kind, x, channels)
    return keras.Model(inputs, x)


def classifier(kind: str, channels: int, repeats: int) -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = _conv(inputs, channels, 3, batch_norm=True)
    for stage in range(2):
        for _ in range(repeats):
            x = block(kind, x, channels, batch_norm=True)
        if stage == 0:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def latency_ms(model: keras.Model, batch: int = 1, runs: int = 50) -> float:
    """Median milliseconds of one call on ``batch`` zero images (a tf.function, warmed up)."""
    call = tf.function(lambda t: model(t, training=False))
    x = tf.zeros((batch, *model.input_shape[1:]))
    return median_ms(lambda: call(x).numpy(), runs)


def blocks_demo(
    kinds: tuple[str, str],
    seeds: Sequence[int],
    channels: int,
    size: int,
    epochs: int,
    lr: float,
    train_images: int | None,
    repeats: int,
) -> tuple[list[dict], dict[str, list[Curves]]]:
    """Each kind's block measured alone and trained inside ``classifier``: the rows and runs."""
    check(seeds, channels=channels, size=size, epochs=epochs, repeats=repeats)
    data = load_digits_28(train_images)
    runs, rows = {}, []
    for kind in kinds:
        alone = block_model(kind, size, channels)
        variant = {kind: lambda k=kind: classifier(k, channels, repeats)}
        runs.update(measure(variant, seeds, data, epochs=epochs, lr=lr))
        val, val_mean = last(runs[kind])
        rows.append(
            {
                "block": kind,
                "params": alone.count_params(),
                "MACs": count_macs(alone),
                "latency ms": latency_ms(alone),
                "val accuracy": val,
                "_val": val_mean,
            }
        )
    return rows, runs
