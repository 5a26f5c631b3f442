"""cnnkeras: convolutional neural networks with Keras 3."""

import os

# TensorFlow 2.21 turns its oneDNN kernels on by default only on some Intel CPUs; elsewhere
# (AMD, AVX2-only) convolutions run on its generic kernels: ResNet-18 trained 3.4x, MobileNet
# v2 1.6x and LeNet-5 1.6x faster with them on (BENCHMARKS.md, "The PyTorch peer"). Read when
# TensorFlow loads, so it is set before any module here imports it; set it to 0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"
