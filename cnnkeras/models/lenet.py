"""LeNet-5 (LeCun et al. 1998): the first convolutional network of the lecture."""

from __future__ import annotations

import keras
from keras import layers

from cnnkeras.errors import UserError
from cnnkeras.models._layers import classic_top, conv_bn_act, inputs
from cnnkeras.models._registry import register_model

# LeCun et al. 1998, Fig. 2: C1 6@5x5, S2, C3 16@5x5 (full connectivity here), S4,
# C5 120 (a dense layer over the 5x5x16 map), F6 84, output layer (dense, not RBF).
LENET5_FILTERS = (6, 16)  # C3 keeps the paper's 16:6 ratio when `filters` changes C1
LENET5_DENSE = (("c5", 120), ("f6", 84))


def _lenet(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    include_top: bool = True,
    pooling: str | None = None,
    dropout: float = 0.0,
    classifier_activation: str | None = "softmax",
    activation: str = "tanh",
    batch_norm: bool = False,
    subsampling: str = "avg",
    filters: int = 6,
    kernel_size: int = 5,
) -> keras.Model:
    if filters < 1 or kernel_size < 1:
        raise UserError(f"{name}: filters and kernel_size must be positive")
    if subsampling not in ("avg", "max"):
        raise UserError(f"{name}: subsampling must be 'avg' or 'max', got {subsampling!r}")
    pool = {"avg": layers.AveragePooling2D, "max": layers.MaxPooling2D}[subsampling]
    img = inputs(input_shape)
    x = img
    widths = (filters, round(filters * LENET5_FILTERS[1] / LENET5_FILTERS[0]))
    for i, width in enumerate(widths):
        x = conv_bn_act(
            x,
            width,
            kernel_size,
            padding="valid",
            batch_norm=batch_norm,
            act=activation,
            name=f"c{2 * i + 1}",
        )
        x = pool(2, name=f"s{2 * i + 2}")(x)  # 32x32 input: 14x14x6, then 5x5x16
    x = classic_top(
        x,
        LENET5_DENSE,
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
    family="lenet",
    paper="LeCun et al. 1998, Gradient-based learning applied to document recognition",
    builder=_lenet,
    input_shape=(32, 32, 1),
    num_classes=10,
    min_size=16,
)
def lenet5(**options) -> keras.Model:
    return _lenet("lenet5", **options)
