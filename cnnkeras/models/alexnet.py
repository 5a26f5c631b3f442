"""AlexNet (Krizhevsky et al. 2012) as a single tower, as in most re-implementations."""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.models._layers import classic_top, conv_bn_act, inputs
from cnnkeras.models._registry import register_model

# Krizhevsky et al. 2012, Sec. 3.5 and Fig. 2, both GPU halves merged:
# (filters, kernel, stride, max-pool 3x3/2 after it)
ALEXNET_CONVS = (
    (96, 11, 4, True),  # 55x55x96 -> 27x27
    (256, 5, 1, True),  # 27x27x256 -> 13x13
    (384, 3, 1, False),
    (384, 3, 1, False),
    (256, 3, 1, True),  # 13x13x256 -> 6x6
)
ALEXNET_DENSE = (("fc6", 4096), ("fc7", 4096))


def _alexnet(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 0.5,
    classifier_activation: str | None = "softmax",
    activation: str = "relu",
    batch_norm: bool = False,
) -> keras.Model:
    img = inputs(input_shape)
    x = img
    for i, (filters, kernel, stride, pool) in enumerate(ALEXNET_CONVS, start=1):
        x = conv_bn_act(
            x,
            filters,
            kernel,
            strides=stride,
            padding="valid" if i == 1 else "same",
            batch_norm=batch_norm,
            act=activation,
            name=f"conv{i}",
        )
        if pool:
            x = layers.MaxPooling2D(3, strides=2, name=f"pool{i}")(x)
    # 6x6x256 = 9216 features at 227x227
    x = classic_top(
        x,
        ALEXNET_DENSE,
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        classifier_activation=classifier_activation,
        act=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
    return keras.Model(img, x, name=name)


@register_model(
    family="alexnet",
    paper="Krizhevsky et al. 2012, ImageNet classification with deep convolutional networks",
    builder=_alexnet,
    input_shape=(227, 227, 3),
    min_size=67,
)
def alexnet(**options) -> keras.Model:
    return _alexnet("alexnet", **options)
