"""EfficientNet (Tan & Le 2019): one baseline scaled in depth, width and resolution together.

``efficientnet(phi)`` builds any compound coefficient; B0..B7 are phi = 0..7 of that same code
path with the published coefficients. Structure and layer names follow
keras.applications.EfficientNet, including its in-model input scaling.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from cnnkeras.errors import UserError
from cnnkeras.models._layers import (
    MIN_SIZE,
    check_options,
    correct_pad,
    head,
    inputs,
    make_divisible,
)
from cnnkeras.models._registry import register_model

# Tan & Le 2019, Table 1 (EfficientNet-B0): kernel, repeats, channels in, channels out,
# expansion ratio, first stride; every block has squeeze-and-excitation with ratio 0.25.
EFFICIENTNET_B0_STAGES = (
    (3, 1, 32, 16, 1, 1),  # 112x112x16
    (3, 2, 16, 24, 6, 2),  # 56x56x24
    (5, 2, 24, 40, 6, 2),  # 28x28x40
    (3, 3, 40, 80, 6, 2),  # 14x14x80
    (5, 3, 80, 112, 6, 1),  # 14x14x112
    (5, 4, 112, 192, 6, 2),  # 7x7x192
    (3, 1, 192, 320, 6, 1),  # 7x7x320
)
SE_RATIO = 0.25
# Sec. 3.3: depth alpha^phi, width beta^phi, resolution gamma^phi, with alpha*beta^2*gamma^2 ~ 2.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
# Published B0..B7 (width, depth, resolution, dropout): the authors' rounded grid of the rule.
EFFICIENTNET_PUBLISHED = (
    (1.0, 1.0, 224, 0.2),
    (1.0, 1.1, 240, 0.2),
    (1.1, 1.2, 260, 0.3),
    (1.2, 1.4, 300, 0.3),
    (1.4, 1.8, 380, 0.4),
    (1.6, 2.2, 456, 0.4),
    (1.8, 2.6, 528, 0.5),
    (2.0, 3.1, 600, 0.5),
)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
CONV_INIT = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")
DENSE_INIT = keras.initializers.VarianceScaling(1.0 / 3.0, "fan_out", "uniform")


def scaling(phi: float) -> tuple[float, float, int, float]:
    """(width, depth, resolution, dropout) for a compound coefficient.

    Integer phi in 0..7 gives the published B0..B7 row; any other phi follows the rule.
    """
    if phi < 0:
        raise UserError(f"efficientnet: phi must be >= 0, got {phi}")
    if float(phi).is_integer() and phi <= 7:
        return EFFICIENTNET_PUBLISHED[int(phi)]
    dropout = EFFICIENTNET_PUBLISHED[min(int(phi), 7)][3]
    return BETA**phi, ALPHA**phi, round(224 * GAMMA**phi), dropout


def mbconv_block(x, *, kernel, filters_in, filters_out, expansion, stride, drop_rate, name):
    """Mobile inverted bottleneck with squeeze-and-excitation and stochastic depth."""
    shortcut = x
    filters = filters_in * expansion
    if expansion != 1:
        x = layers.Conv2D(
            filters,
            1,
            padding="same",
            use_bias=False,
            kernel_initializer=CONV_INIT,
            name=f"{name}expand_conv",
        )(x)
        x = layers.BatchNormalization(name=f"{name}expand_bn")(x)
        x = layers.Activation("swish", name=f"{name}expand_activation")(x)
    if stride == 2:
        x = layers.ZeroPadding2D(correct_pad(x.shape[1], kernel), name=f"{name}dwconv_pad")(x)
    x = layers.DepthwiseConv2D(
        kernel,
        strides=stride,
        padding="same" if stride == 1 else "valid",
        use_bias=False,
        depthwise_initializer=CONV_INIT,
        name=f"{name}dwconv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}bn")(x)
    x = layers.Activation("swish", name=f"{name}activation")(x)
    se = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}se_squeeze")(x)
    se = layers.Reshape((1, 1, filters), name=f"{name}se_reshape")(se)
    se = layers.Conv2D(
        max(1, int(filters_in * SE_RATIO)),
        1,
        activation="swish",
        kernel_initializer=CONV_INIT,
        name=f"{name}se_reduce",
    )(se)
    se = layers.Conv2D(
        filters, 1, activation="sigmoid", kernel_initializer=CONV_INIT, name=f"{name}se_expand"
    )(se)
    x = layers.Multiply(name=f"{name}se_excite")([x, se])
    x = layers.Conv2D(
        filters_out, 1, use_bias=False, kernel_initializer=CONV_INIT, name=f"{name}project_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:  # stochastic depth: drop the whole residual branch per sample
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = layers.Add(name=f"{name}add")([x, shortcut])
    return x


def _efficientnet(
    name: str,
    phi: float,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float | None = None,
    classifier_activation: str | None = "softmax",
    drop_connect_rate: float = 0.2,
    imagenet_stddev_fix: bool = False,
) -> keras.Model:
    """``imagenet_stddev_fix`` adds keras.applications' correction layer for its checkpoints."""
    width, depth, _, default_dropout = scaling(phi)
    dropout = default_dropout if dropout is None else dropout
    stages = [
        (k, math.ceil(depth * n), make_divisible(cin * width), make_divisible(cout * width), e, s)
        for k, n, cin, cout, e, s in EFFICIENTNET_B0_STAGES
    ]
    total_blocks = sum(stage[1] for stage in stages)
    img = inputs(input_shape)
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(img)
    x = layers.Normalization(axis=-1, name="normalization")(x)
    if imagenet_stddev_fix:
        x = layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB], name="rescaling_1")(
            x
        )
    x = layers.ZeroPadding2D(correct_pad(x.shape[1], 3), name="stem_conv_pad")(x)
    x = layers.Conv2D(
        make_divisible(32 * width),
        3,
        strides=2,
        use_bias=False,
        kernel_initializer=CONV_INIT,
        name="stem_conv",
    )(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Activation("swish", name="stem_activation")(x)
    b = 0
    for i, (kernel, repeats, cin, cout, expansion, stride) in enumerate(stages):
        for j in range(repeats):
            x = mbconv_block(
                x,
                kernel=kernel,
                filters_in=cin if j == 0 else cout,
                filters_out=cout,
                expansion=expansion,
                stride=stride if j == 0 else 1,
                drop_rate=drop_connect_rate * b / total_blocks,
                name=f"block{i + 1}{chr(j + 97)}_",
            )
            b += 1
    x = layers.Conv2D(
        make_divisible(1280 * width),
        1,
        use_bias=False,
        kernel_initializer=CONV_INIT,
        name="top_conv",
    )(x)
    x = layers.BatchNormalization(name="top_bn")(x)
    x = layers.Activation("swish", name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout > 0:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        x = layers.Dense(
            num_classes,
            activation=classifier_activation,
            kernel_initializer=DENSE_INIT,
            name="predictions",
        )(x)
    else:
        x = head(x, include_top=False, num_classes=num_classes, pooling=pooling)
    return keras.Model(img, x, name=name)


def efficientnet(phi: float = 0, **options) -> keras.Model:
    """EfficientNet for any compound coefficient ``phi`` (B0..B7 at phi = 0..7), by default
    at the rule's resolution with 1000 classes; the options are those of the registered
    ``efficientnet_b*`` models, checked the same way."""
    label = f"b{int(phi)}" if float(phi).is_integer() and 0 <= phi <= 7 else f"phi{phi:g}"
    resolution = scaling(phi)[2]
    options = {"input_shape": (resolution, resolution, 3), "num_classes": 1000, **options}
    check_options(f"efficientnet_{label}", _efficientnet, MIN_SIZE, options)
    return _efficientnet(f"efficientnet_{label}", phi, **options)


_PAPER = "Tan & Le 2019, EfficientNet: rethinking model scaling for CNNs"


def _register(phi: int) -> None:
    resolution = EFFICIENTNET_PUBLISHED[phi][2]

    def entry(**options) -> keras.Model:
        return _efficientnet(f"efficientnet_b{phi}", phi, **options)

    entry.__name__ = entry.__qualname__ = f"efficientnet_b{phi}"
    entry.__doc__ = (
        f"EfficientNet-B{phi}: compound coefficient phi={phi}, {resolution}x{resolution}."
    )
    globals()[entry.__name__] = register_model(
        family="efficientnet",
        paper=_PAPER,
        builder=_efficientnet,
        input_shape=(resolution, resolution, 3),
        keras_application=f"EfficientNetB{phi}",
    )(entry)


for _phi in range(8):
    _register(_phi)
