"""The smallest reproduction of the oneDNN bug cnnkeras refuses to train into, for TensorFlow
upstream: the kernel gradient of a 1x1 convolution with stride 2 and fewer than 8 input
channels, against the same gradient in NumPy (a strided 1x1 convolution is a matrix product
of the subsampled input with the output gradient).

    TF_ENABLE_ONEDNN_OPTS=1 python tests/benchmarks/onednn_1x1.py   # wrong for 1-7 channels
    TF_ENABLE_ONEDNN_OPTS=0 python tests/benchmarks/onednn_1x1.py   # right (Eigen's kernels)
    TF_ENABLE_ONEDNN_OPTS=1 TF_NUM_INTRAOP_THREADS=1 python tests/benchmarks/onednn_1x1.py
        # "double free or corruption" / segmentation fault: the kernel writes past a buffer

Plain TensorFlow and NumPy, no cnnkeras. Measured with TensorFlow 2.21.0 (oneDNN 3.7.3, kernel
``jit_1x1:avx2``, backward_weights; ``ONEDNN_VERBOSE=1`` names it) on an AMD EPYC with AVX2.
"""

import numpy as np
import tensorflow as tf


def relative_error(channels: int, size: int = 12, stride: int = 2) -> float:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, size, size, channels)).astype("float32")
    out = (size - 1) // stride + 1
    dy = rng.normal(size=(8, out, out, 8)).astype("float32")
    grad = tf.raw_ops.Conv2DBackpropFilter(
        input=x,
        filter_sizes=[1, 1, channels, 8],
        out_backprop=dy,
        strides=[1, stride, stride, 1],
        padding="SAME",
    ).numpy()[0, 0]
    want = np.einsum("nhwc,nhwo->co", x[:, ::stride, ::stride].astype("float64"), dy)
    return float(np.abs(grad - want).max() / np.abs(want).max())


if __name__ == "__main__":
    from tensorflow.python.util import _pywrap_util_port

    print(f"TensorFlow {tf.__version__}, oneDNN kernels on: {_pywrap_util_port.IsMklEnabled()}")
    for channels in range(1, 17):
        error = max(relative_error(channels, size) for size in (5, 12, 13, 28))
        print(f"{channels:2d} input channels: relative error {error:.1e}", "WRONG" * (error > 1e-4))
