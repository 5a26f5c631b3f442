"""Small building blocks shared by every architecture family.

Each block is a function ``(x, ..., name) -> x`` that names its layers deterministically,
so that weights can be copied between models by layer name (see ``_weights.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import keras
from keras import layers

from cnnkeras.errors import UserError

CLASSIC_ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")
POOLINGS = (None, "avg", "max")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10%.

    The rule of the MobileNet v2 and EfficientNet reference code; hardware runs channel counts
    that are multiples of 8 faster.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def correct_pad(size: int | None, kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Zero padding that makes a stride-2 'valid' conv match TensorFlow's 'same' (keras rule)."""
    adjust = 1 if size is None else 1 - size % 2
    half = kernel // 2
    return ((half - adjust, half), (half - adjust, half))


def activation(kind: str, name: str) -> layers.Layer:
    """An activation layer; 'relu6' is the clipped ReLU of the mobile families."""
    if kind == "relu6":
        return layers.ReLU(6.0, name=name)
    if kind == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.1, name=name)
    return layers.Activation(kind, name=name)


def conv_bn_act(
    x,
    filters: int,
    kernel: int,
    *,
    name: str,
    strides: int = 1,
    padding: str | int = "same",
    use_bias: bool | None = None,
    batch_norm: bool = True,
    act: str | None = "relu",
    bn_epsilon: float = 1e-3,
):
    """Conv2D, optional BatchNorm, optional activation: ``{name}_conv``, ``_bn``, ``_{act}``.

    An integer ``padding`` inserts an explicit ``{name}_pad`` ZeroPadding2D and a 'valid'
    conv (the keras.applications ResNet stem). The bias defaults to off when a BatchNorm
    follows, since BN's beta makes it redundant.
    """
    if isinstance(padding, int):
        x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        padding = "valid"
    if use_bias is None:
        use_bias = not batch_norm
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, use_bias=use_bias, name=f"{name}_conv"
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(epsilon=bn_epsilon, name=f"{name}_bn")(x)
    if act is not None:
        x = activation(act, f"{name}_{'relu' if act == 'relu' else 'act'}")(x)
    return x


def dense_block(x, units: int, *, name: str, act: str, dropout: float = 0.0, batch_norm=False):
    """Dense, optional BatchNorm, activation and dropout: the fully connected layers of the
    classic families."""
    x = layers.Dense(units, use_bias=not batch_norm, name=name)(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = activation(act, f"{name}_{'relu' if act == 'relu' else 'act'}")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def head(
    x,
    *,
    include_top: bool,
    num_classes: int,
    pooling: str | None,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
    top_pool: str | None = "avg",
):
    """Classifier head or feature output in keras.applications' vocabulary.

    With ``include_top`` the features are pooled (``top_pool``: 'avg', 'flatten', or None when
    they already are a vector), dropped out and classified; without it ``pooling`` decides
    between the raw feature map and a global pool.
    """
    if include_top:
        if top_pool == "avg":
            x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        elif top_pool == "flatten":
            x = layers.Flatten(name="flatten")(x)
        if dropout:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        return layers.Dense(num_classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def classic_top(
    x,
    dense: Sequence[tuple[str, int]],
    *,
    include_top: bool,
    num_classes: int,
    pooling: str | None,
    classifier_activation: str | None,
    act: str,
    dropout: float,
    batch_norm: bool,
):
    """Flatten, the named fully connected layers and the classifier of LeNet, AlexNet and VGG;
    without the top, the feature map or its global pool."""
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for name, units in dense:
            x = dense_block(x, units, name=name, act=act, dropout=dropout, batch_norm=batch_norm)
    return head(
        x,
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        classifier_activation=classifier_activation,
        top_pool=None,
    )


MIN_SIZE = 32  # the smallest input side most families take (five stride-2 stages)


def check_options(model: str, builder: Callable, min_size: int, options: dict) -> None:
    """Check the options every family shares, as given or as ``builder``'s defaults; the
    registry calls this before every registered entry point (one place, not each builder)."""
    params = inspect.signature(builder).parameters.values()
    values = {p.name: p.default for p in params if p.default is not p.empty} | options
    check_common(
        model,
        values["input_shape"],
        min_size,
        num_classes=values["num_classes"],
        pooling=values.get("pooling"),
        classifier_activation=values.get("classifier_activation", "softmax"),
        dropout=values.get("dropout") or 0.0,
        act=values.get("activation"),
    )


def check_common(
    model: str,
    input_shape: Sequence[int],
    min_size: int,
    *,
    num_classes: int = 1,
    pooling: str | None = None,
    classifier_activation: str | None = "softmax",
    dropout: float = 0.0,
    act: str | None = None,
) -> tuple[int, int, int]:
    """Validate the options every family shares; raise ``UserError`` saying what to do."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(not isinstance(d, int) for d in shape):
        raise UserError(f"{model}: input_shape must be (height, width, channels), got {shape}")
    h, w, c = shape
    if c not in (1, 3):
        raise UserError(f"{model}: input must have 1 or 3 channels, got {c}")
    if min(h, w) < min_size:
        raise UserError(
            f"{model}: input {h}x{w} is too small; the minimum is {min_size}x{min_size}"
        )
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UserError(f"{model}: num_classes must be a positive integer, got {num_classes}")
    if pooling not in POOLINGS:
        raise UserError(f"{model}: pooling must be None, 'avg' or 'max', got {pooling!r}")
    if classifier_activation not in (None, "softmax", "sigmoid", "linear"):
        raise UserError(
            f"{model}: classifier_activation must be 'softmax', 'sigmoid' or None (logits), "
            f"got {classifier_activation!r}"
        )
    if not 0.0 <= dropout < 1.0:
        raise UserError(f"{model}: dropout must be in [0, 1), got {dropout}")
    if act is not None and act not in CLASSIC_ACTIVATIONS:
        raise UserError(
            f"{model}: activation must be one of {', '.join(CLASSIC_ACTIVATIONS)}, got {act!r}"
        )
    return h, w, c


def inputs(shape: Sequence[int]) -> keras.KerasTensor:
    return keras.Input(shape=tuple(shape), name="input")
