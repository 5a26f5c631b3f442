"""VGG (Simonyan & Zisserman 2015): depth from stacks of 3x3 convolutions."""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.models._layers import activation as act_layer
from cnnkeras.models._layers import classic_top, inputs
from cnnkeras.models._registry import register_model

# Simonyan & Zisserman 2015, Table 1: 3x3 convs per block, configurations D and E;
# every block ends in a 2x2 max pool (224 -> 112 -> 56 -> 28 -> 14 -> 7).
VGG_WIDTHS = (1, 2, 4, 8, 8)  # times `filters` (64 in the paper)
VGG_DEPTHS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
VGG_DENSE = ("fc1", "fc2")


def _vgg(
    name: str,
    depth: int,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
    activation: str = "relu",
    batch_norm: bool = False,
    filters: int = 64,
    kernel_size: int = 3,
    dense_units: int = 4096,
) -> keras.Model:
    img = inputs(input_shape)
    x = img
    for b, (times, convs) in enumerate(zip(VGG_WIDTHS, VGG_DEPTHS[depth], strict=True), start=1):
        width = times * filters
        for i in range(1, convs + 1):
            # keras.applications' layer names, so that its ImageNet weights copy by name
            x = layers.Conv2D(
                width,
                kernel_size,
                padding="same",
                use_bias=not batch_norm,
                name=f"block{b}_conv{i}",
            )(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"block{b}_conv{i}_bn")(x)
            x = act_layer(activation, f"block{b}_conv{i}_{activation}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    # 7x7x512 = 25088 features at 224x224
    x = classic_top(
        x,
        [(name, dense_units) for name in VGG_DENSE],
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        classifier_activation=classifier_activation,
        act=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
    return keras.Model(img, x, name=name)


_PAPER = "Simonyan & Zisserman 2015, Very deep convolutional networks for large-scale recognition"


@register_model(family="vgg", paper=_PAPER, builder=_vgg, keras_application="VGG16")
def vgg16(**options) -> keras.Model:
    return _vgg("vgg16", 16, **options)


@register_model(family="vgg", paper=_PAPER, builder=_vgg, keras_application="VGG19")
def vgg19(**options) -> keras.Model:
    return _vgg("vgg19", 19, **options)
