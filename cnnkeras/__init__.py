"""cnnkeras: convolutional neural networks with Keras 3."""

import os
import platform

__version__ = "0.1.0"

# TensorFlow's oneDNN kernels, before anything imports TensorFlow: TensorFlow 2.21 turns them
# on only on some Intel CPUs, and on the others (AMD among them) trains 1.6-3.4x slower on its
# generic kernels (BENCHMARKS.md). The one layer shape they are known to get wrong is refused
# by training (cnnkeras/train/_kernels.py). TF_ENABLE_ONEDNN_OPTS=0 keeps them off.
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
