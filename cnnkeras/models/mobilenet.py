"""MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018): depthwise-separable convs.

Layer names and structure follow keras.applications.MobileNet / MobileNetV2 so that their
ImageNet checkpoints copy in, and so that TFLite exports match what mobile developers know.
"""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.errors import UserError
from cnnkeras.models._layers import correct_pad, head, inputs, make_divisible
from cnnkeras.models._registry import register_model

# Howard et al. 2017, Table 1: (pointwise filters, stride) of the 13 separable blocks
# after a 3x3/2 conv with 32 filters. 224 -> 112 -> 56 -> 28 -> 14 -> 7.
MOBILENET_V1_BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)

# Sandler et al. 2018, Table 2: expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),  # 112x112x16
    (6, 24, 2, 2),  # 56x56x24
    (6, 32, 3, 2),  # 28x28x32
    (6, 64, 4, 2),  # 14x14x64
    (6, 96, 3, 1),  # 14x14x96
    (6, 160, 3, 2),  # 7x7x160
    (6, 320, 1, 1),  # 7x7x320
)


# keras.applications.MobileNetV2 uses 0.999, tuned for long ImageNet runs; from scratch on a
# few thousand images its moving statistics lag so far behind that validation sits at chance
# for dozens of epochs. Momentum is no weight: ImageNet checkpoints copy in all the same.
BN_MOMENTUM = 0.99


def _check_alpha(name: str, alpha: float, depth_multiplier: int = 1) -> None:
    if not 0 < alpha <= 4:
        raise UserError(f"{name}: alpha (width multiplier) must be in (0, 4], got {alpha}")
    if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise UserError(f"{name}: depth_multiplier must be a positive integer")


def depthwise_separable_block(x, filters: int, *, stride: int, depth_multiplier: int, block: int):
    """3x3 depthwise conv, then 1x1 pointwise conv, each with BN and ReLU6 (v1, Fig. 3)."""
    if stride == 2:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same" if stride == 1 else "valid",
        depth_multiplier=depth_multiplier,
        use_bias=False,
        name=f"conv_dw_{block}",
    )(x)
    x = layers.BatchNormalization(name=f"conv_dw_{block}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block}_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"conv_pw_{block}")(x)
    x = layers.BatchNormalization(name=f"conv_pw_{block}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block}_relu")(x)


def _mobilenet_v1(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 1e-3,
    classifier_activation: str | None = "softmax",
    alpha: float = 1.0,
    depth_multiplier: int = 1,
) -> keras.Model:
    _check_alpha(name, alpha, depth_multiplier)
    img = inputs(input_shape)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(
        img
    )
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block, (filters, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        x = depthwise_separable_block(
            x, int(filters * alpha), stride=stride, depth_multiplier=depth_multiplier, block=block
        )
    if include_top:  # keras.applications' 1x1-conv classifier, equivalent to a dense layer
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(num_classes, 1, padding="same", name="conv_preds")(x)
        x = layers.Reshape((num_classes,), name="reshape_2")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = head(x, include_top=False, num_classes=num_classes, pooling=pooling)
    return keras.Model(img, x, name=name)


def inverted_residual_block(x, *, expansion: int, filters: int, stride: int, block: int):
    """1x1 expansion, 3x3 depthwise, linear 1x1 projection; residual when shapes match."""
    in_channels = x.shape[-1]
    shortcut = x
    prefix = f"block_{block}_" if block else "expanded_conv_"
    bn = dict(epsilon=1e-3, momentum=BN_MOMENTUM)
    if block:
        x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=f"{prefix}expand")(x)
        x = layers.BatchNormalization(name=f"{prefix}expand_BN", **bn)(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    if stride == 2:
        x = layers.ZeroPadding2D(correct_pad(x.shape[1], 3), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        use_bias=False,
        padding="same" if stride == 1 else "valid",
        name=f"{prefix}depthwise",
    )(x)
    x = layers.BatchNormalization(name=f"{prefix}depthwise_BN", **bn)(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}project")(x)
    x = layers.BatchNormalization(name=f"{prefix}project_BN", **bn)(x)  # linear bottleneck
    if in_channels == filters and stride == 1:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


def _mobilenet_v2(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
    alpha: float = 1.0,
) -> keras.Model:
    _check_alpha(name, alpha)
    bn = dict(epsilon=1e-3, momentum=BN_MOMENTUM)
    img = inputs(input_shape)
    x = layers.Conv2D(
        make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="Conv1"
    )(img)
    x = layers.BatchNormalization(name="bn_Conv1", **bn)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)  # 112x112x32
    block = 0
    for t, c, n, s in MOBILENET_V2_STAGES:
        for i in range(n):
            x = inverted_residual_block(
                x,
                expansion=t,
                filters=make_divisible(int(c * alpha)),
                stride=s if i == 0 else 1,
                block=block,
            )
            block += 1
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280  # Sec. 5.1: never narrower
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(name="Conv_1_bn", **bn)(x)
    x = layers.ReLU(6.0, name="out_relu")(x)  # 7x7x1280
    x = head(
        x,
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )
    return keras.Model(img, x, name=name)


@register_model(
    family="mobilenet",
    paper="Howard et al. 2017, MobileNets: efficient CNNs for mobile vision applications",
    builder=_mobilenet_v1,
    keras_application="MobileNet",
)
def mobilenet_v1(**options) -> keras.Model:
    return _mobilenet_v1("mobilenet_v1", **options)


@register_model(
    family="mobilenet",
    paper="Sandler et al. 2018, MobileNetV2: inverted residuals and linear bottlenecks",
    builder=_mobilenet_v2,
    keras_application="MobileNetV2",
)
def mobilenet_v2(**options) -> keras.Model:
    return _mobilenet_v2("mobilenet_v2", **options)
