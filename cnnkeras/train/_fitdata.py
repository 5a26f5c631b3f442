"""What ``model.fit`` is given from a plan: the endless training and validation pipelines, the
steps of an epoch, class weights, and the one order of a fit's callbacks (``fit_callbacks``),
shared by runs, the learning-rate range test and the tuner's trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import keras
import tensorflow as tf

from cnnkeras.data import make_pipeline
from cnnkeras.train._callbacks import PreciseBatchNorm, trainable_batch_norms


class FitData(NamedTuple):
    """What ``model.fit`` needs from a plan: endless training and validation pipelines with
    the steps of one epoch of each, and the precise batch-norm callback (in a list; empty for
    a model without training batch norm)."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    callbacks: list
    steps_per_epoch: int
    validation_steps: int
    class_weight: dict[int, float] | None = None

    def fit_kwargs(self) -> dict:
        return {
            "x": self.train,
            "validation_data": self.val,
            "steps_per_epoch": self.steps_per_epoch,
            "validation_steps": self.validation_steps,
            "class_weight": self.class_weight,
        }


def fit_pipelines(
    model, data, prep, plan, *, seed, augment, cache_dir, tallies=None, start_epoch: int = 0
) -> FitData:
    """The pipelines of a plan. They repeat, and ``fit`` is told the steps of an epoch, so that
    Keras keeps one iterator of each across epochs (no start-up cost per epoch); training's
    starts at ``start_epoch`` (each epoch's draws are a function of the seed and its number).
    Precise batch norm reads the training images without augmentation, the same sample
    before every validation: the statistics of what evaluation will see."""
    tallies = tallies or {}
    common = dict(cache=plan.cache, cache_dir=cache_dir, repeat=True)
    train = data.splits["train"]
    train_ds = make_pipeline(
        train,
        prep,
        data.num_classes,
        batch_size=plan.batch_size,
        training=True,
        augment=augment,
        mix=dict(plan.mix),
        seed=seed,
        epoch=start_epoch,
        tally=tallies.get("train"),
        drop_remainder=plan.drop_last,
        **common,
    )
    val_ds = make_pipeline(
        data.splits["val"],
        prep,
        data.num_classes,
        batch_size=plan.val_batch_size,
        tally=tallies.get("val"),
        sample_weights=True,
        pad_to=plan.val_steps * plan.val_batch_size if plan.val_padded else 0,
        drop_remainder=plan.val_padded,  # whole batches: multi-host needs their size known
        **common,
    )
    callbacks = []
    if trainable_batch_norms(model):
        clean = make_pipeline(
            train,
            prep,
            data.num_classes,
            batch_size=plan.batch_size,
            training=True,
            seed=seed + 1,
            epoch=0,
            cache="none",
        )
        callbacks.append(PreciseBatchNorm(clean))
    weights = dict(enumerate(plan.class_weights)) if plan.class_weights else None
    return FitData(train_ds, val_ds, callbacks, plan.steps_per_epoch, plan.val_steps, weights)


def fit_callbacks(
    fit_data: FitData, averaged: keras.callbacks.Callback | None, rest: Sequence = ()
) -> list:
    """The order every fit keeps: the weights' average first (it is what validation, precise
    batch norm and any checkpoint see), precise batch norm next (validation must see the
    statistics it recomputed), then ``rest`` in the caller's order."""
    return [*([averaged] if averaged is not None else []), *fit_data.callbacks, *rest]
