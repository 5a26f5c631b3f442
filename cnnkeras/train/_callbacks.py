"""The callbacks of a run: the per-epoch commit (history row, checkpoint, best model),
early stopping and plateau rules that can be restored after a restart, precise batch-norm
statistics, and the learning-rate schedules."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import keras
import tensorflow as tf

from cnnkeras import _io
from cnnkeras._files import CHECKPOINTS, HISTORY_FILE, MODEL_FILE
from cnnkeras._keras_internals import LexicographicEarlyStopping, ema_averages, replace_ema_update
from cnnkeras.train._history import append_history
from cnnkeras.train._plan import DECAYING

MONITOR = "val_accuracy"
PRECISE_BN_BATCHES = 50  # fvcore uses 200 batches on ImageNet; a few thousand images suffice


def score(logs: dict) -> tuple[float, float] | None:
    """How good an epoch is: validation accuracy, ties broken by the lower validation loss.
    A few dozen validation images give few distinct accuracies, and the first of several
    epochs that tie is rarely the best; the loss still ranks them."""
    if MONITOR not in logs:
        return None
    return (float(logs[MONITOR]), -float(logs.get("val_loss", math.inf)))


def _ends(lr: float, schedule: str) -> tuple[float, float]:
    """(the rate a warm-up starts from, the share of ``lr`` a decay ends at)."""
    return (lr / 25, 1e-5) if schedule == "onecycle" else (0.0, 0.0)


def learning_rate(lr: float, plan) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The plan's schedule as a Keras built-in (saved with the optimizer, so a resumed run
    continues it from the optimizer's step count). Warm-up is linear, decay a cosine: to 0
    ('cosine', as timm), or from lr/25 up over the first quarter and down to lr * 1e-5
    ('onecycle', as fastai's fit_one_cycle). A run stopped by the clock gets its rate from
    ``TimeBudget`` instead (``rate_at``)."""
    if plan is None or plan.schedule not in DECAYING:
        return lr
    warmup = plan.warmup_epochs * plan.steps_per_epoch
    start, alpha = _ends(lr, plan.schedule)
    decay = max(1, plan.total_steps - warmup)
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(lr, decay, alpha=alpha)
    return keras.optimizers.schedules.CosineDecay(
        start, decay, alpha=alpha, warmup_target=lr, warmup_steps=warmup
    )


def rate_at(lr: float, plan, progress: float) -> float:
    """The rate ``learning_rate``'s schedule gives at ``progress`` (0..1) of the run."""
    start, alpha = _ends(lr, plan.schedule)
    warm = plan.warmup_epochs / plan.epochs
    if progress < warm:
        return start + (lr - start) * progress / warm
    done = min(1.0, (progress - warm) / (1 - warm)) if warm < 1 else 1.0
    return lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * done)) + alpha)


EMA_WARMUP = 10.0  # the decay of step t is at most (1 + t) / (10 + t) (TensorFlow's num_updates)


def warm_up_average(optimizer: keras.optimizers.Optimizer) -> None:
    """Give the optimizer's weight average (``use_ema``) a warm-up: the decay of step t is
    min(decay, (1 + t) / (10 + t)), as TensorFlow's ``ExponentialMovingAverage`` with
    ``num_updates`` and timm's warm-up do. Keras keeps the decay constant from the first step,
    so after t steps the average still holds decay^t of the first weights: with 0.999, two
    thirds after 400 steps, and a short run (a tuner trial) validates and saves what is
    mostly its initialisation. Set on the instance (not saved with it): ``compile`` and
    ``resume`` call this."""
    from keras import ops

    def update(trainable_variables):
        step = ops.cast(optimizer.iterations, "float32")
        decay = ops.minimum(optimizer.ema_momentum, (1.0 + step) / (EMA_WARMUP + step))
        decay = ops.where(ops.equal(optimizer.iterations, 0), 0.0, decay)  # first: a copy
        for var, average in zip(trainable_variables, ema_averages(optimizer), strict=True):
            if average is not None:
                d = ops.cast(decay, var.dtype)
                average.assign(d * average + (1.0 - d) * var)

    replace_ema_update(optimizer, update)


class AveragedWeights(keras.callbacks.Callback):
    """Evaluate and save the exponential moving average of the weights (timm's model EMA)
    that the optimizer keeps (``use_ema``). Before each validation the averages replace the
    trainable weights, so that validation, precise batch norm (which comes after this
    callback in the list and recomputes the statistics for the averaged weights) and the best
    model all use them. ``RunCheckpoint`` saves the epoch checkpoint, which resumes training,
    inside ``raw_weights()``, and calls ``restore()`` when the epoch is committed."""

    def __init__(self):
        super().__init__()
        self._raw: list | None = None

    def on_test_begin(self, logs=None):
        optimizer = self.model.optimizer
        if self._raw is not None or not optimizer.built:
            return
        variables = self.model.trainable_variables
        self._raw = [v.numpy() for v in variables]
        for v, average in zip(variables, ema_averages(optimizer), strict=True):
            v.assign(average)

    @contextlib.contextmanager
    def raw_weights(self):
        """A context in which the model holds its training weights."""
        if self._raw is None:
            yield
            return
        variables = self.model.trainable_variables
        averaged = [v.numpy() for v in variables]
        _assign(variables, self._raw)
        try:
            yield
        finally:
            _assign(variables, averaged)

    def restore(self) -> None:
        """Training goes on from the raw weights."""
        if self._raw is not None:
            _assign(self.model.trainable_variables, self._raw)
            self._raw = None

    def restorer(self) -> keras.callbacks.Callback:
        """A callback to place last where no ``RunCheckpoint`` restores (a tuner trial): the
        epoch's other callbacks see the averaged weights, the next epoch trains the raw."""
        return keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self.restore())


def _assign(variables, values) -> None:
    for v, value in zip(variables, values, strict=True):
        v.assign(value)


SEED_STATE = "seed_generator_state"  # the name of a Keras seed generator's state variable


def seed_states(model: keras.Model) -> list[list[int]]:
    """The state of every seed generator of the model (its dropout layers' say): Keras does
    not save them, and a resumed run must draw what the uninterrupted one would have."""
    return [
        [int(v) for v in keras.ops.convert_to_numpy(variable)]
        for variable in model.variables
        if variable.name == SEED_STATE
    ]


def set_seed_states(model: keras.Model, states: list[list[int]]) -> None:
    """Put back what ``seed_states`` read (of the same model, so the same order)."""
    variables = [v for v in model.variables if v.name == SEED_STATE]
    if len(variables) != len(states):
        raise ValueError(f"{len(states)} seed states for {len(variables)} seed generators")
    for variable, state in zip(variables, states, strict=True):
        variable.assign(keras.ops.convert_to_tensor(state, variable.dtype))


def checkpoint_file(run: Path, epoch: int) -> Path:
    """Where the epoch checkpoint of ``epoch`` is (the resume point)."""
    return run / CHECKPOINTS / f"epoch-{epoch:04d}.keras"


def last_checkpoint(run: Path) -> tuple[Path, int] | None:
    """The newest epoch checkpoint of a run folder and its epoch, or None."""
    found = sorted((run / CHECKPOINTS).glob("epoch-[0-9][0-9][0-9][0-9].keras"))
    return (found[-1], int(found[-1].stem.removeprefix("epoch-"))) if found else None


def seeds_file(checkpoint: Path) -> Path:
    """Where the seed states of a checkpoint are: written before it, as part of its commit."""
    return checkpoint.with_suffix(".seeds.json")


class RunCheckpoint(keras.callbacks.Callback):
    """History row, then the epoch checkpoint (commit point; its seed states just before),
    then the best model.

    A non-finite loss stops training before anything of that epoch is written, so the best
    model so far is kept. With ``averaged`` (an ``AveragedWeights``) the checkpoint holds
    the training weights and the best model the averaged ones.
    """

    def __init__(
        self,
        run_dir: Path,
        best: tuple[float, float] | None = None,
        best_epoch: int = -1,
        extra: dict | None = None,
        averaged: AveragedWeights | None = None,
    ):
        super().__init__()
        self.run_dir = run_dir
        self.extra = extra or {}
        self.best = best
        self.best_epoch = best_epoch
        self.averaged = averaged
        self.nan_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs=None):
        try:
            self._commit(epoch, dict(logs or {}))
        finally:
            if self.averaged is not None:
                self.averaged.restore()

    def _commit(self, epoch: int, logs: dict) -> None:
        if not all(math.isfinite(float(v)) for v in logs.values()):
            self.nan_epoch = epoch
            self.model.stop_training = True
            return
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items() if k != "learning_rate"}}
        row["lr"] = lr
        row.update(self.extra)
        append_history(self.run_dir / HISTORY_FILE, row)
        checkpoint = checkpoint_file(self.run_dir, epoch)
        checkpoint.parent.mkdir(exist_ok=True)
        _io.write_json(seeds_file(checkpoint), seed_states(self.model))
        with self.averaged.raw_weights() if self.averaged else contextlib.nullcontext():
            _io.save_model(self.model, checkpoint)
        for old in checkpoint.parent.glob("epoch-*"):
            if not old.name.startswith(checkpoint.stem + "."):
                old.unlink(missing_ok=True)
        value = score(logs)
        if value is not None and (self.best is None or value > self.best):
            self.best, self.best_epoch = value, epoch
            if self.averaged is None:  # the checkpoint holds these very weights: no second save
                _io.copy_file(checkpoint, self.run_dir / MODEL_FILE)
            else:
                _io.save_model(self.model, self.run_dir / MODEL_FILE)


class TimeBudget(keras.callbacks.Callback):
    """Stops training inside an epoch once one more step, and the validation and epoch-end
    work after it, would end beyond ``seconds`` of ``fit`` (tracing included): runs given
    the same budget train for the same wall-clock time, whatever their probe foresaw.

    A step's length is the last one's (the first call of ``fit`` traces, so it is no
    sample); the epoch-end work is the last epoch's, ``first_tail`` (a probe's, with the
    first validation's tracing) before the first epoch ends.

    With ``rate`` (progress 0..1 -> learning rate) it also sets the rate after each call,
    progress being the steps done out of those the clock will allow: the planned steps in the
    first epoch, then at the pace since the first epoch ended (epoch-end work included; the
    first call's tracing and the first validation's are not paces): the schedule ends where the
    clock stops the run, however far the probe was off (a fixed schedule over the planned
    epochs was cut half way when epochs took 1.5x the probe's figure)."""

    def __init__(
        self,
        seconds: float,
        first_tail: float = 0.0,
        rate: Callable[[float], float] | None = None,
        planned_steps: int = 1,
    ):
        super().__init__()
        self.seconds = seconds
        self.tail = first_tail
        self.rate = rate
        self.planned_steps = planned_steps  # the pace is unknown until the first epoch ends

    def on_train_begin(self, logs=None):
        self.start = self.last = time.perf_counter()
        self.step = 0.0
        self.traced = False
        self.paced_from = None  # (time, steps done) when the first epoch ended
        self._set_rate(self.start)

    def on_epoch_begin(self, epoch: int, logs=None):
        self.last = time.perf_counter()
        if self.rate is not None and self.paced_from is None and self.traced:
            self.paced_from = (self.last, self._steps_done())

    def on_train_batch_end(self, batch: int, logs=None):
        now = time.perf_counter()
        if self.traced:
            self.step = now - self.last
        self.traced, self.last = True, now
        self._stop_if_over(now)
        self._set_rate(now)

    def on_epoch_end(self, epoch: int, logs=None):
        now = time.perf_counter()
        self.tail = now - self.last
        self._stop_if_over(now)

    def _stop_if_over(self, now: float) -> None:
        if now - self.start + self.step + self.tail > self.seconds:
            self.model.stop_training = True

    def _steps_done(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _set_rate(self, now: float) -> None:
        if self.rate is None:
            return
        done = self._steps_done()
        if self.paced_from is None:
            total = max(self.planned_steps, done + 1)
        else:
            since, first = self.paced_from
            pace = (done - first) / (now - since) if now > since and done > first else 0.0
            left = max(0.0, self.seconds - (now - self.start) - self.tail)
            total = done + left * pace if pace else max(self.planned_steps, done + 1)
        self.model.optimizer.learning_rate = self.rate(min(1.0, done / max(total, 1)))


class EarlyStopState(NamedTuple):
    """Early stopping's counters after an epoch: epochs without improvement, the best score
    and its epoch."""

    wait: int
    best: tuple[float, float]
    best_epoch: int


class PlateauState(NamedTuple):
    """The plateau rule's counters: epochs since the best or the last reduction, best value."""

    wait: int
    best: float


class _Restorable(keras.callbacks.Callback):
    """A Keras callback whose counters are set from ``restore`` (a named state) when
    training begins, as they were after the last completed epoch before a restart."""

    def __init__(self, *args, restore: NamedTuple | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._restore = restore

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for name, value in (self._restore._asdict() if self._restore else {}).items():
            setattr(self, name, value)


class ResumableEarlyStopping(_Restorable, LexicographicEarlyStopping):
    """EarlyStopping on the run's ``score``; ``restore`` is an ``EarlyStopState``."""

    def get_monitor_value(self, logs):
        return score(logs or {})


class ResumableReduceLR(_Restorable, keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau; ``restore`` is a ``PlateauState``."""


def trainable_batch_norms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Batch-norm layers of the model itself that train (and so update their statistics);
    those of a nested base run in inference mode and keep theirs."""
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


class PreciseBatchNorm(keras.callbacks.Callback):
    """Before every validation, set each training batch-norm layer's moving mean and variance
    to the average of its batch statistics over up to 50 batches of ``dataset`` ("precise
    BN", Wu & Johnson 2021), computed with the weights as they are now. Training passes its
    training images without augmentation: the statistics of what evaluation will see.

    The moving averages lag behind the weights: with momentum 0.99 and a few steps an epoch
    they are still mostly their initial values after many epochs, and a model that trains
    well predicts one class for everything at evaluation. Precise statistics do not depend
    on the number of steps; computing them costs one forward pass over those batches."""

    def __init__(self, dataset: tf.data.Dataset, batches: int = PRECISE_BN_BATCHES):
        super().__init__()
        self.dataset, self.batches = dataset, batches
        self._moments = None

    def on_test_begin(self, logs=None):  # called inside fit, before each validation
        self.recompute()

    def recompute(self) -> None:
        layers = trainable_batch_norms(self.model)
        if not layers:
            return
        if self._moments is None:
            images = self.dataset.element_spec[0]
            self._moments = _moments_function(self.model, layers, images)
        total, count = None, 0
        for batch in self.dataset.take(self.batches):
            moments = self._moments(batch[0])  # one vector: an add a batch, not one a tensor
            total = moments if total is None else total + moments
            count += 1
        if not count:
            return
        averages, start = keras.ops.convert_to_numpy(total) / count, 0
        for layer in layers:
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(averages[start : start + channels])
            layer.moving_variance.assign(averages[start + channels : start + 2 * channels])
            start += 2 * channels


def _moments_function(model: keras.Model, layers: list, images: tf.TensorSpec | None = None):
    """A compiled function from a batch to every layer's batch mean and variance (per channel),
    as the layer sees them in training mode, in one vector (layer by layer, mean then
    variance). ``images``: the batches' spec, if known: traced once for any batch size, where
    a last smaller batch would trace it again. Under JAX (multi-host) it runs on this
    process's copy of the weights, and every process reads the same batches, so all of them
    compute the same statistics."""
    probe = keras.Model(model.inputs, [layer.input for layer in layers])

    def moments(outputs, of=keras.ops.moments):
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        found = []
        for layer, out in zip(layers, outputs, strict=True):
            out = keras.ops.cast(out, "float32")  # a mixed-precision model's activations
            axis = layer.axis % len(out.shape)
            axes = [a for a in range(len(out.shape)) if a != axis]
            found += list(of(out, axes))
        return keras.ops.concatenate(found)

    if keras.backend.backend() == "tensorflow":
        signature = (
            None if images is None else [tf.TensorSpec((None, *images.shape[1:]), images.dtype)]
        )
        return tf.function(
            lambda x: moments(probe(x, training=True), tf.nn.moments),
            input_signature=signature,
            reduce_retracing=True,
        )
    import jax
    import numpy as np

    @jax.jit
    def stateless(trainable, non_trainable, x):
        return moments(probe.stateless_call(trainable, non_trainable, x, training=True)[0])

    def local(variables):  # a replicated array's copy on this process's first device
        return [v.value.addressable_data(0) for v in variables]

    def run(x):
        values = local(probe.trainable_variables), local(probe.non_trainable_variables)
        return np.asarray(stateless(*values, np.asarray(x)))

    return run
