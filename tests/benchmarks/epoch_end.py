"""What the end of an epoch costs on MobileNet v2 (alpha 0.35, 32x32x3, 10 classes, with its
Adam state), medians of 5 interleaved rounds: the best model saved a second time against the
epoch checkpoint copied (``RunCheckpoint``), and precise BN's sums of 50 batches' moments
added tensor by tensor against one vector a batch (``PreciseBatchNorm``; the sums must be
identical). ``python tests/benchmarks/epoch_end.py``."""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from cnnkeras._spawn import import_tensorflow_quietly

import_tensorflow_quietly()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from cnnkeras import _io  # noqa: E402
from cnnkeras.models import create_model  # noqa: E402
from cnnkeras.train._callbacks import _moments_function, trainable_batch_norms  # noqa: E402

ROUNDS, BATCHES = 5, 50


def medians_s(*works) -> list[float]:
    """Each work's median seconds over ROUNDS rounds, the works taking turns in each round."""
    times = [[] for _ in works]
    for _ in range(ROUNDS):
        for work, seen in zip(works, times, strict=True):
            start = time.perf_counter()
            work()
            seen.append(time.perf_counter() - start)
    return [statistics.median(seen) for seen in times]


def main() -> None:
    model = create_model("mobilenet_v2", input_shape=(32, 32, 3), num_classes=10, alpha=0.35)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).random((64, 32, 32, 3), np.float32)
    model.fit(x, keras.utils.to_categorical(np.arange(64) % 10, 10), epochs=1, verbose=0)
    folder = Path(tempfile.mkdtemp())
    _io.save_model(model, folder / "epoch.keras")
    save, copy = medians_s(
        lambda: _io.save_model(model, folder / "model.keras"),
        lambda: _io.copy_file(folder / "epoch.keras", folder / "model.keras"),
    )
    print(f"best model: saved again {save * 1000:.0f} ms, checkpoint copied {copy * 1000:.0f} ms")

    layers = trainable_batch_norms(model)
    images = np.random.default_rng(1).random((BATCHES * 16, 32, 32, 3), np.float32)
    batches = tf.data.Dataset.from_tensor_slices(images).batch(16)
    probe = keras.Model(model.inputs, [layer.input for layer in layers])

    @tf.function
    def per_tensor(batch):  # the moments as the callback computed them before: a list
        return [m for out in probe(batch, training=True) for m in tf.nn.moments(out, [0, 1, 2])]

    one_vector = _moments_function(model, layers)

    def tensor_by_tensor():
        sums = None
        for batch in batches:
            moments = per_tensor(batch)
            sums = moments if sums is None else [s + m for s, m in zip(sums, moments, strict=True)]
        return np.concatenate([np.asarray(s) for s in sums])

    def vector():
        total = None
        for batch in batches:
            moments = one_vector(batch)
            total = moments if total is None else total + moments
        return np.asarray(total)

    same = np.array_equal(tensor_by_tensor(), vector())  # traced here, outside the rounds
    old, new = medians_s(tensor_by_tensor, vector)
    print(
        f"precise BN ({len(layers)} layers, {BATCHES} batches): tensor by tensor {old:.2f} s, "
        f"one vector {new:.2f} s; sums identical: {same}"
    )


if __name__ == "__main__":
    main()
