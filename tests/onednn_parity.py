"""One training step's loss and gradients of zoo models, for comparing TensorFlow's oneDNN
kernels with its Eigen ones (whichever TF_ENABLE_ONEDNN_OPTS in the environment selects).

Run in a process of its own (TensorFlow picks its kernels when it loads):
``python tests/onednn_parity.py ARCH@SIZE ... --out FILE.npz``. Each model is built from seed
0 and takes one batch of 16 real digits (mnist5k, resized; grey or repeated to RGB) in
training mode (batch norm normalises by the batch, so its backward pass is exercised too).
Writes ``ARCH/loss`` and ``ARCH/VARIABLE`` arrays.
"""

from __future__ import annotations

import argparse

import cnnkeras  # noqa: F401  (sets TensorFlow's kernels before TensorFlow loads)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+", help="ARCH@SIZE, e.g. resnet18@32")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from cnnkeras.data import load_dataset
    from cnnkeras.models import create_model

    digits = load_dataset("mnist5k", verbose=0).splits["train"]
    pick = np.arange(16) * (len(digits) // 16)  # the split is ordered by class: all ten
    images, labels = digits.images[pick] / np.float32(255), digits.labels[pick]
    arrays = {}
    for spec in args.models:
        arch, size = spec.split("@")
        channels = 1 if arch == "lenet5" else 3
        x = tf.image.resize(images, (int(size), int(size)))
        x = tf.repeat(x, channels, axis=-1) if channels == 3 else x
        keras.utils.set_random_seed(0)
        model = create_model(arch, input_shape=(int(size), int(size), channels), num_classes=10)
        with tf.GradientTape() as tape:
            predicted = model(x, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, predicted))
        grads = tape.gradient(loss, model.trainable_variables)
        arrays[f"{arch}/loss"] = loss.numpy()
        for variable, grad in zip(model.trainable_variables, grads, strict=True):
            arrays[f"{arch}/{variable.path}"] = grad.numpy()
    np.savez(args.out, **arrays)


if __name__ == "__main__":
    main()
