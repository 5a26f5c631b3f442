"""ResNet (He et al. 2015): residual learning with basic (18, 34) and bottleneck blocks (50+).

ResNet-50/101/152 follow keras.applications exactly (stride on the first 1x1 conv, convolution
biases before BatchNorm), so its ImageNet weights copy in. ResNet-18/34 follow the paper and
torchvision (no bias before BatchNorm, projection shortcut only when the shape changes).
"""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.models._layers import conv_bn_act, head, inputs
from cnnkeras.models._registry import register_model

# He et al. 2015, Table 1: residual blocks in stages conv2_x .. conv5_x.
RESNET_STAGES = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
RESNET_WIDTHS = (64, 128, 256, 512)  # bottleneck blocks output 4x this
BN_EPS = 1.001e-5  # keras.applications' value


def basic_block(x, filters: int, *, stride: int, use_bias: bool, name: str):
    """Two 3x3 convs; a 1x1 projection shortcut where the shape changes (option B)."""
    conv = dict(use_bias=use_bias, bn_epsilon=BN_EPS)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv_bn_act(x, filters, 1, strides=stride, act=None, name=f"{name}_0", **conv)
    else:
        shortcut = x
    x = conv_bn_act(x, filters, 3, strides=stride, name=f"{name}_1", **conv)
    x = conv_bn_act(x, filters, 3, act=None, name=f"{name}_2", **conv)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(x, filters: int, *, stride: int, use_bias: bool, name: str, project: bool):
    """1x1 reduce, 3x3, 1x1 expand to 4x filters (keras.applications' residual_block_v1)."""
    conv = dict(use_bias=use_bias, bn_epsilon=BN_EPS)
    if project:
        shortcut = conv_bn_act(
            x, 4 * filters, 1, strides=stride, act=None, name=f"{name}_0", **conv
        )
    else:
        shortcut = x
    x = conv_bn_act(x, filters, 1, strides=stride, name=f"{name}_1", **conv)
    x = conv_bn_act(x, filters, 3, name=f"{name}_2", **conv)
    x = conv_bn_act(x, 4 * filters, 1, act=None, name=f"{name}_3", **conv)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _resnet(
    name: str,
    depth: int,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
) -> keras.Model:
    kind, blocks = RESNET_STAGES[depth]
    use_bias = kind == "bottleneck"
    img = inputs(input_shape)
    x = conv_bn_act(
        img, 64, 7, strides=2, padding=3, use_bias=use_bias, bn_epsilon=BN_EPS, name="conv1"
    )  # 112x112x64
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)  # 56x56x64
    for stage, (filters, repeats) in enumerate(zip(RESNET_WIDTHS, blocks, strict=True), start=2):
        for i in range(1, repeats + 1):
            stride = 2 if i == 1 and stage > 2 else 1
            block_name = f"conv{stage}_block{i}"
            if kind == "basic":
                x = basic_block(x, filters, stride=stride, use_bias=use_bias, name=block_name)
            else:
                x = bottleneck_block(
                    x,
                    filters,
                    stride=stride,
                    use_bias=use_bias,
                    name=block_name,
                    project=i == 1,
                )
        # conv2: 56x56, conv3: 28x28, conv4: 14x14, conv5: 7x7
    x = head(
        x,
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )
    return keras.Model(img, x, name=name)


_PAPER = "He et al. 2015, Deep residual learning for image recognition"


@register_model(family="resnet", paper=_PAPER, builder=_resnet)
def resnet18(**options) -> keras.Model:
    return _resnet("resnet18", 18, **options)


@register_model(family="resnet", paper=_PAPER, builder=_resnet)
def resnet34(**options) -> keras.Model:
    return _resnet("resnet34", 34, **options)


@register_model(family="resnet", paper=_PAPER, builder=_resnet, keras_application="ResNet50")
def resnet50(**options) -> keras.Model:
    return _resnet("resnet50", 50, **options)


@register_model(family="resnet", paper=_PAPER, builder=_resnet, keras_application="ResNet101")
def resnet101(**options) -> keras.Model:
    return _resnet("resnet101", 101, **options)


@register_model(family="resnet", paper=_PAPER, builder=_resnet, keras_application="ResNet152")
def resnet152(**options) -> keras.Model:
    return _resnet("resnet152", 152, **options)
