"""TensorFlow's oneDNN kernels, which cnnkeras turns on (``cnnkeras/__init__.py``), and the
one layer shape they are known to get wrong, which training refuses while they are on.

On x86 CPUs where TensorFlow 2.21 leaves oneDNN off (AMD, and Intel without AVX-512 VNNI),
its own Eigen kernels train 1.6-3.4x slower (BENCHMARKS.md, "The PyTorch peer, and
TensorFlow's oneDNN kernels"). oneDNN 3.7.3, which TensorFlow 2.21 bundles, computes the
kernel gradient of a 1x1 convolution with stride > 1 wrongly when the convolution has fewer
than 8 input channels (its ``jit_1x1:avx2`` backward-weights kernel: 40-200% relative error;
with one intra-op thread it also corrupts the heap and the process dies), measured for every
count 1-7 and right for 8-24 (``tests/benchmarks/onednn_1x1.py`` reproduces it in a few
lines). PyTorch 2.13's oneDNN gives the same wrong answer for channels_last tensors. None of
the zoo's models has such a layer at any width; a model that has one is refused in one line,
before it trains, rather than trained on wrong gradients.

``IsMklEnabled`` is TensorFlow's private name for "oneDNN kernels are on in this process";
it has no public one (checked with TensorFlow 2.21).
"""

from __future__ import annotations

import keras

from cnnkeras._keras_internals import all_layers
from cnnkeras.errors import UserError

FEWEST_SAFE_CHANNELS = 8  # input channels from which oneDNN's strided 1x1 gradient is right


def onednn_on() -> bool:
    """Whether this process's TensorFlow runs its oneDNN kernels (decided when it loaded)."""
    if keras.backend.backend() != "tensorflow":
        return False
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow without the name: assume the kernels are on
        return True
    return bool(_pywrap_util_port.IsMklEnabled())


def wrong_gradient_layers(model: keras.Model) -> list[str]:
    """The names of ``model``'s layers whose kernel gradient oneDNN computes wrongly: 1x1
    convolutions with stride > 1 and fewer than ``FEWEST_SAFE_CHANNELS`` input channels."""
    return [
        layer.name
        for layer in all_layers(model)
        if isinstance(layer, keras.layers.Conv2D)
        and layer.built
        and tuple(layer.kernel_size) == (1, 1)
        and max(layer.strides) > 1
        and layer.kernel.shape[-2] < FEWEST_SAFE_CHANNELS
    ]


def refuse_wrong_gradients(model: keras.Model) -> None:
    """Raise a ``UserError`` naming the way out when oneDNN is on and ``model`` would train
    on its wrong gradients; nothing otherwise."""
    layers = wrong_gradient_layers(model) if onednn_on() else []
    if layers:
        more = f" and {len(layers) - 1} more" if len(layers) > 1 else ""
        raise UserError(
            f"TensorFlow's oneDNN kernels compute wrong gradients for a 1x1 convolution with "
            f"stride > 1 and fewer than {FEWEST_SAFE_CHANNELS} input channels (layer "
            f"'{layers[0]}'{more}): give it {FEWEST_SAFE_CHANNELS} or more, or run with "
            f"TF_ENABLE_ONEDNN_OPTS=0 in the environment"
        )
