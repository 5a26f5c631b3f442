"""Residual connections: plain nets against the same depths with skip connections."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from cnnkeras.demos._harness import check, curves_png, last, load_digits_28, measure, result
from cnnkeras.demos._registry import SEEDS, register_demo
from cnnkeras.errors import UserError

COLUMNS = (
    "network",
    "layers with weights",
    "skip connections (Add)",
    "params",
    "train accuracy",
    "val accuracy",
)


def cifar_resnet(depth: int, skips: bool, widths: Sequence[int] = (16, 32, 64)) -> keras.Model:
    """He et al.'s CIFAR network: depth = 6n + 2 (a stem, three stages of n blocks of two
    3x3 convolutions with batch norm, global pooling, softmax); ``skips=False`` is the same
    network without its identity shortcuts (the paper's plain net). Downsampling shortcuts
    are 1x1 convolutions with stride 2."""
    if (depth - 2) % 6:
        raise UserError(f"`depths` must be 6n + 2 (20, 32, 44, 56, ...), got {depth}")
    n = (depth - 2) // 6

    def conv_bn(x, filters, stride=1):
        x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        return keras.layers.BatchNormalization()(x)

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.ReLU()(conv_bn(inputs, widths[0]))
    for stage, filters in enumerate(widths):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            y = keras.layers.ReLU()(conv_bn(x, filters, stride))
            y = conv_bn(y, filters)
            if skips:
                shortcut = x
                if stride != 1 or x.shape[-1] != filters:
                    shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
                    shortcut = keras.layers.BatchNormalization()(shortcut)
                y = keras.layers.Add()([y, shortcut])
            x = keras.layers.ReLU()(y)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def count_adds(model: keras.Model) -> int:
    """The model's Add layers: its skip connections."""
    return sum(isinstance(layer, keras.layers.Add) for layer in model.layers)


def residual_held(rows: list[dict], shallow: int, deep: int) -> bool:
    """The deep plain network trains worse than the shallow plain one, and the deep residual
    one better than the deep plain one (training accuracy: a claim about optimisation)."""
    by = {r["network"]: r["_train"] for r in rows}
    degrades = by[f"plain-{deep}"] < by[f"plain-{shallow}"]
    return degrades and by[f"residual-{deep}"] > by[f"plain-{deep}"]


@register_demo("residual")
def residual_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    depths: Sequence[int] = (20, 56),
    epochs: int = 4,
    lr: float = 1e-3,
    train_images: int | None = 1000,
    widths: Sequence[int] = (8, 16, 32),
) -> dict:
    """Plain nets against the same depths with skip connections: the deeper plain net
    trains worse than the shallower one, the residual one does not (He et al., Figure 1)."""
    check(seeds, epochs=epochs)
    data = load_digits_28(train_images)
    runs, rows = {}, []
    for depth in depths:
        for skips in (False, True):
            name = f"{'residual' if skips else 'plain'}-{depth}"
            model = cifar_resnet(depth, skips, widths)
            variant = {name: lambda d=depth, k=skips: cifar_resnet(d, k, widths)}
            runs.update(measure(variant, seeds, data, epochs=epochs, lr=lr))
            train, train_mean = last(runs[name], "accuracy")
            rows.append(
                {
                    "network": name,
                    "layers with weights": depth,
                    "skip connections (Add)": count_adds(model),
                    "params": f"{model.count_params():,}",
                    "train accuracy": train,
                    "val accuracy": last(runs[name])[0],
                    "_train": train_mean,
                }
            )
    by = {r["network"]: r["_train"] for r in rows}
    shallow, deep = min(depths), max(depths)
    verdict = (
        f"training accuracy after {epochs} epochs: plain {by[f'plain-{shallow}']:.3f} "
        f"({shallow} layers) and {by[f'plain-{deep}']:.3f} ({deep}); residual "
        f"{by[f'residual-{shallow}']:.3f} and {by[f'residual-{deep}']:.3f}"
    )
    return result(
        "residual",
        COLUMNS,
        rows,
        residual_held(rows, shallow, deep),
        verdict,
        curves_png({"accuracy": runs, "val_accuracy": runs}, "plain against residual"),
    )
