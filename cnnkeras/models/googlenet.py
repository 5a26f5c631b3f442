"""GoogLeNet / Inception v1 (Szegedy et al. 2014): parallel 1x1, 3x3, 5x5 and pool branches."""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.errors import UserError
from cnnkeras.models._layers import conv_bn_act, head, inputs
from cnnkeras.models._registry import register_model

# Szegedy et al. 2014, Table 1, one row per inception module:
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj); "pool" is a 3x3/2 max pool.
GOOGLENET_LAYOUT = (
    "pool",  # 28x28x192
    ("3a", (64, 96, 128, 16, 32, 32)),  # 28x28x256
    ("3b", (128, 128, 192, 32, 96, 64)),  # 28x28x480
    "pool",
    ("4a", (192, 96, 208, 16, 48, 64)),  # 14x14x512, auxiliary head 1
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),  # 14x14x528, auxiliary head 2
    ("4e", (256, 160, 320, 32, 128, 128)),  # 14x14x832
    "pool",
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),  # 7x7x1024
)
AUX_AFTER = ("4a", "4d")


def inception_module(x, spec: tuple[int, ...], *, act: str, batch_norm: bool, name: str):
    """Four parallel branches concatenated; the 1x1 reductions keep the 3x3 and 5x5 cheap."""
    n1, r3, n3, r5, n5, pp = spec
    conv = dict(act=act, batch_norm=batch_norm)
    b1 = conv_bn_act(x, n1, 1, name=f"{name}_1x1", **conv)
    b2 = conv_bn_act(x, r3, 1, name=f"{name}_3x3_reduce", **conv)
    b2 = conv_bn_act(b2, n3, 3, name=f"{name}_3x3", **conv)
    b3 = conv_bn_act(x, r5, 1, name=f"{name}_5x5_reduce", **conv)
    b3 = conv_bn_act(b3, n5, 5, name=f"{name}_5x5", **conv)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b4 = conv_bn_act(b4, pp, 1, name=f"{name}_pool_proj", **conv)
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


AUX_MIN_SIZE = 80  # the 5x5/3 aux pool needs a 5x5 map at stage 4


def aux_head(x, num_classes: int, *, act: str, classifier_activation, name: str):
    """Auxiliary classifier of Sec. 5: 5x5/3 average pool, 1x1 conv 128, fc 1024, 70% dropout."""
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = conv_bn_act(x, 128, 1, act=act, batch_norm=False, name=f"{name}_1x1")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation=act, name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, activation=classifier_activation, name=f"{name}_predictions")(
        x
    )


def _googlenet(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 0.4,
    classifier_activation: str | None = "softmax",
    activation: str = "relu",
    batch_norm: bool = False,
    aux_heads: bool = False,
) -> keras.Model:
    """With ``aux_heads`` (training only, as in the paper) the model has three outputs."""
    if aux_heads and min(input_shape[:2]) < AUX_MIN_SIZE:
        raise UserError(
            f"{name}: aux_heads need an input of at least {AUX_MIN_SIZE}x{AUX_MIN_SIZE}, got "
            f"{input_shape[0]}x{input_shape[1]}"
        )
    conv = dict(act=activation, batch_norm=batch_norm)
    img = inputs(input_shape)
    x = conv_bn_act(img, 64, 7, strides=2, name="conv1_7x7", **conv)  # 112x112x64
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)  # 56x56x64
    x = conv_bn_act(x, 64, 1, name="conv2_reduce", **conv)
    x = conv_bn_act(x, 192, 3, name="conv2_3x3", **conv)  # 56x56x192
    aux, pools = [], 1
    for row in GOOGLENET_LAYOUT:
        if row == "pool":
            pools += 1
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{pools}")(x)
            continue
        module, spec = row
        x = inception_module(x, spec, name=f"inception_{module}", **conv)
        if aux_heads and include_top and module in AUX_AFTER:
            aux.append(
                aux_head(
                    x,
                    num_classes,
                    act=activation,
                    name=f"aux{len(aux) + 1}",
                    classifier_activation=classifier_activation,
                )
            )
    x = head(
        x,
        include_top=include_top,
        num_classes=num_classes,
        pooling=pooling,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )
    return keras.Model(img, [x, *aux] if aux else x, name=name)


@register_model(
    family="googlenet",
    paper="Szegedy et al. 2014, Going deeper with convolutions",
    builder=_googlenet,
)
def googlenet(**options) -> keras.Model:
    return _googlenet("googlenet", **options)
