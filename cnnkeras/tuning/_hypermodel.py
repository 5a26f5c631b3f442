"""The hypermodel: samples an experiment's search space, builds the architecture through
``create_model`` and trains each trial as ``cnnkeras train`` would (same plan, pipelines and
precise batch norm)."""

from __future__ import annotations

import math
import time

import keras
import keras_tuner as kt

from cnnkeras._files import CACHE_DIR
from cnnkeras.errors import UserError
from cnnkeras.models import create_model, model_info
from cnnkeras.train import (
    AveragedWeights,
    build_in_precision,
    compile_for_training,
    fit_callbacks,
    fit_pipelines,
    plan_run,
    replicas,
    synchronize_batch_norm,
)
from cnnkeras.tuning._experiment import TRAINING_HPS, Experiment


def sample(hp: kt.HyperParameters, name: str, spec):
    """A hyperparameter from its spec: a list or {values}, or {min, max[, step, sampling]}."""
    if isinstance(spec, list):
        spec = {"values": spec}
    if "values" in spec:
        values = spec["values"]
        if values and all(type(v) is bool for v in values):  # a Choice holds them as 0 and 1
            return hp.Boolean(name) if len(set(values)) == 2 else hp.Fixed(name, values[0])
        return hp.Choice(name, values)
    low, high = spec["min"], spec["max"]
    if isinstance(low, int) and isinstance(high, int) and "sampling" not in spec:
        return hp.Int(name, low, high, step=spec.get("step", 1))
    return hp.Float(
        name,
        float(low),
        float(high),
        step=spec.get("step"),
        sampling=spec.get("sampling", "linear"),
    )


class ZooHyperModel(kt.HyperModel):
    """Builds the experiment's architecture with sampled options through ``create_model``."""

    def __init__(self, experiment: Experiment, data, prep):
        super().__init__(name=experiment.name)
        self.experiment = experiment
        self.data = data
        self.prep = prep
        self.info = model_info(experiment.arch)
        self.cache_dir = experiment.out / CACHE_DIR

    def build(self, hp):
        space = self.experiment.space(self.info.family)
        options = {k: sample(hp, k, v) for k, v in space.items() if k not in TRAINING_HPS}
        unknown = sorted(set(options) - set(self.info.options))
        if unknown:
            raise UserError(
                f"{self.experiment.arch} has no option(s) {', '.join(unknown)} to "
                f"search; it takes {', '.join(self.info.options)}"
            )
        for name in TRAINING_HPS:  # sampled here too, so that every trial records them
            if name in space:
                sample(hp, name, space[name])
        model = build_in_precision(
            self.experiment.precision,
            lambda: create_model(
                self.experiment.arch,
                input_shape=self.prep.input_shape,
                num_classes=self.data.num_classes,
                **{**self.experiment.model_options, **options},  # a sampled value wins
            ),
        )
        if self.experiment.distribute != "none":  # built in the tuner's strategy scope
            synchronize_batch_norm(model)
        return model

    def fit(self, hp, model, *args, callbacks=None, epochs=None, **kwargs):
        """Train as ``cnnkeras train`` would: the same plan ('auto' batch size, steps per
        execution, schedule), pipelines and precise batch-norm statistics. Each trial builds
        its own pipelines, so that it sees the same shuffles whatever ran before it in its
        process (and a search gives the same results however it is split into processes)."""
        experiment = self.experiment
        space = experiment.space(self.info.family)
        picked = {k: sample(hp, k, space[k]) for k in TRAINING_HPS if k in space}
        initial_epoch = int(kwargs.get("initial_epoch", 0))
        epochs = epochs or experiment.epochs
        config = experiment.train_config(picked, epochs=max(1, epochs - initial_epoch))
        config.validate()
        plan = plan_run(config, self.data, self.prep, verbose=0, replicas=replicas(model))
        compile_for_training(model, config, plan)
        fit_data = fit_pipelines(
            model,
            self.data,
            self.prep,
            plan,
            seed=experiment.seed,
            augment=plan.augment,
            cache_dir=self.cache_dir,
        )
        # the weights' average, when asked, is what validation, the tuner's checkpoint and
        # the ranking see, as in a run
        averaged = AveragedWeights() if config.ema else None
        restore = [averaged.restorer()] if averaged else []  # after the tuner's checkpoint
        started = time.perf_counter()
        history = model.fit(
            **fit_data.fit_kwargs(),
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=fit_callbacks(
                fit_data,
                averaged,
                [*(callbacks or []), keras.callbacks.TerminateOnNaN(), *restore],
            ),
            verbose=0,
            shuffle=False,
        )
        losses = history.history.get("loss", [])
        # what the trial cost, for the tuner's run_trial: it gets this history (or error) back
        record = {
            "seconds": time.perf_counter() - started,
            "epochs": len(losses),
            "params": int(model.count_params()),
            "batch_size": plan.batch_size,
            "replicas": replicas(model),
        }
        if not losses or not all(math.isfinite(v) for v in losses):
            error = kt.errors.FailedTrialError("loss became NaN; lower the learning rate")
            error.trial_record = record
            raise error
        history.trial_record = record
        return history
