"""Steady-state training throughput of the default training path, on synthetic data.

``steps`` is one epoch of that many steps, run as ``cnnkeras train`` runs it (the same
choice of steps per execution, validation included when asked); timings are medians over
several timed epochs after a warm-up epoch (tracing), so that the number reflects the model
and the machine, not start-up costs.
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from cnnkeras.errors import UserError
from cnnkeras.models import create_model, model_info


class _EpochTimer(keras.callbacks.Callback):
    """Each epoch's seconds, and its tail: from the last training step to the epoch's end
    (validation, and the work of the callbacks before this one)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []
        self.tails: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.times.append(now - self._start)
        self.tails.append(now - self._last)


def _synthetic(
    n: int, batch: int, shape, num_classes: int, seed: int, endless: bool
) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, *shape)).astype("float32")
    y = np.eye(num_classes, dtype="float32")[rng.integers(0, num_classes, n)]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
    return (ds.repeat() if endless else ds).prefetch(-1)


def bench_train(
    arch: str = "lenet5",
    *,
    batch_size: int = 64,
    image_size: int | None = None,
    channels: int | None = None,
    num_classes: int = 10,
    steps: int = 64,
    val_images: int = 0,
    repeats: int = 5,
    jit_compile: bool | str | None = None,
    steps_per_execution: int | None = None,
    model_options: dict | None = None,
    precision: str = "float32",
    float32_layers: tuple[str, ...] | None = None,
    precise_bn_batches: int | None = None,
) -> dict:
    """Images per second of ``model.fit`` as ``cnnkeras train`` compiles and runs it: one
    epoch of ``steps`` training steps, then ``val_images`` of validation (0: none), preceded
    by precise batch-norm statistics when the model has batch norm. ``model_options``: the
    builder's (e.g. ``{"alpha": 0.35}``); ``precision``: float32, bfloat16 or float16, as
    ``train --precision`` builds the model (``float32_layers``: the layer types it keeps in
    float32, train's default when None); ``precise_bn_batches``: the clean batches its
    statistics are computed from (``steps`` when None; train takes up to 50)."""
    from cnnkeras.train import POLICIES, PreciseBatchNorm, execution_plan, trainable_batch_norms

    if steps < 1 or repeats < 1 or batch_size < 1 or val_images < 0:
        raise UserError("steps, repeats and batch_size must be >= 1, val_images >= 0")
    if precision not in POLICIES:
        raise UserError(f"`precision` must be one of {', '.join(POLICIES)}")
    info = model_info(arch)
    size = info.image_size(image_size)
    shape = (size, size, channels or info.input_shape[-1])
    spe, val_batch, val_steps = execution_plan(steps, val_images)
    overrides = {"steps_per_execution": steps_per_execution or spe}
    if jit_compile is not None:
        overrides["jit_compile"] = jit_compile
    kept = {} if float32_layers is None else {"float32_layers": tuple(float32_layers)}
    model = _compiled(
        arch, shape, num_classes, model_options, batch_size, overrides, precision, kept
    )
    spe = int(model.steps_per_execution)
    # train's plan makes the steps per execution divide both epochs, and repeats the data so
    # that one iterator lives across epochs; an override that does not divide runs as Keras
    # runs a finite epoch, with its short last chunk (an endless one would overrun the epoch)
    endless = steps % spe == 0 and val_steps % spe == 0
    data = _synthetic(steps * batch_size, batch_size, shape, num_classes, 0, endless)
    val = _synthetic(val_images, val_batch, shape, num_classes, 1, endless) if val_images else None
    timer = _EpochTimer()
    callbacks = [timer]
    if val_images and trainable_batch_norms(model):  # train recomputes them before validation
        clean_batches = precise_bn_batches or steps
        clean = _synthetic(clean_batches * batch_size, batch_size, shape, num_classes, 2, False)
        callbacks.insert(0, PreciseBatchNorm(clean))
    model.fit(
        data,
        validation_data=val,
        epochs=repeats + 1,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
        steps_per_epoch=steps if endless else None,
        validation_steps=val_steps if endless and val_images else None,
    )
    per_epoch = timer.times[1:]  # the first epoch traces
    median = statistics.median(per_epoch)
    return {
        "arch": arch,
        "batch_size": batch_size,
        "input_shape": list(shape),
        "steps": steps,
        "val_images": val_images,
        "val_steps": val_steps,
        "repeats": repeats,
        "precision": precision,
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
        "images_per_sec": batch_size * steps / median,
        "step_ms_median": 1000 * median / steps,
        "epoch_s_median": median,
        "first_epoch_s": timer.times[0],  # tracing included
        "first_tail_s": timer.tails[0],  # the first validation, its tracing included
        "tail_s_median": statistics.median(timer.tails[1:]),
        "images_per_sec_runs": [batch_size * steps / t for t in per_epoch],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def _compiled(
    arch: str, shape, num_classes: int, options, batch_size: int, overrides, precision: str, kept
) -> keras.Model:
    """The model as ``cnnkeras train`` builds and compiles it, from seed 0 (op determinism
    included, as in training)."""
    from cnnkeras.train import (
        TrainConfig,
        build_in_precision,
        compile_for_training,
        seed_everything,
    )

    seed_everything(0)
    model = build_in_precision(
        precision,
        lambda: create_model(arch, input_shape=shape, num_classes=num_classes, **(options or {})),
        **kept,
    )
    compile_for_training(model, TrainConfig(arch=arch, batch_size=batch_size), **overrides)
    return model


def bench_train_text(r: dict) -> str:
    """A ``bench_train`` result in one line."""
    shape = "x".join(map(str, r["input_shape"]))
    val = f" + {r['val_images']} validation images" if r["val_images"] else ""
    return (
        f"{r['arch']} {shape}, batch {r['batch_size']}, {r.get('precision', 'float32')}: "
        f"{r['images_per_sec']:,.0f} images/s "
        f"({r['step_ms_median']:.2f} ms/step; median of {r['repeats']} epochs of {r['steps']} "
        f"steps{val}, {r['steps_per_execution']} steps per execution)"
    )


__all__ = ["bench_train", "bench_train_text"]
