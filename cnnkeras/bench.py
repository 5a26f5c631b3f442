"""Steady-state training throughput of the default training path, on synthetic data.

Timings are medians over several timed epochs after a warm-up epoch (tracing, XLA
compilation), so that the number reflects the model and the machine, not start-up costs.
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from cnnkeras.models import create_model, model_info


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def bench_train(
    arch: str = "lenet5",
    *,
    batch_size: int = 64,
    image_size: int | None = None,
    channels: int | None = None,
    num_classes: int = 10,
    steps: int = 50,
    repeats: int = 5,
    jit_compile: bool | str | None = None,
    steps_per_execution: int | None = None,
) -> dict:
    """Images per second of ``model.fit`` as ``cnnkeras train`` compiles it."""
    from cnnkeras.train._config import TrainConfig
    from cnnkeras.train._run import compile_for_training, seed_everything

    info = model_info(arch)
    size = image_size or info.input_shape[0]
    channels = channels or info.input_shape[-1]
    seed_everything(0)  # as in training, op determinism included
    model = create_model(arch, input_shape=(size, size, channels), num_classes=num_classes)
    overrides = {}
    if jit_compile is not None:
        overrides["jit_compile"] = jit_compile
    if steps_per_execution is not None:
        overrides["steps_per_execution"] = steps_per_execution
    compile_for_training(model, TrainConfig(arch=arch, batch_size=batch_size), **overrides)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (batch_size, size, size, channels)).astype("float32")
    y = np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, batch_size)]
    data = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(tf.data.AUTOTUNE)
    timer = _EpochTimer()
    model.fit(
        data, epochs=repeats + 1, steps_per_epoch=steps, callbacks=[timer], verbose=0, shuffle=False
    )
    per_epoch = timer.times[1:]  # the first epoch traces and compiles
    median = statistics.median(per_epoch)
    return {
        "arch": arch,
        "batch_size": batch_size,
        "input_shape": [size, size, channels],
        "steps": steps,
        "repeats": repeats,
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
        "images_per_sec": batch_size * steps / median,
        "step_ms_median": 1000 * median / steps,
        "images_per_sec_runs": [batch_size * steps / t for t in per_epoch],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
