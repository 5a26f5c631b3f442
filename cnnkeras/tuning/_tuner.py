"""Keras Tuner tuners that record each trial (attempts, wall time, epochs, size, memory),
seed it from its id, fail a trial whose process keeps dying, and hand over to a fresh
process once this one has grown too much."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import keras_tuner as kt

from cnnkeras import _io
from cnnkeras.train import make_strategy, single_process
from cnnkeras.tuning._experiment import Experiment
from cnnkeras.tuning._hypermodel import ZooHyperModel
from cnnkeras.tuning._kt import retries_pending

PROJECT = "search"
EXTRA = "cnnkeras.json"  # attempts, wall time, epochs, parameters and memory, per trial folder
MAX_DEATHS = 2  # a trial whose process died this often is recorded FAILED, not run again
TUNER_ID = "KERASTUNER_TUNER_ID"  # Keras Tuner's distributed mode: chief, tuner0, tuner1, ...


def _rss_mb() -> float:
    import psutil  # a dependency of keras-tuner

    return psutil.Process().memory_info().rss / 2**20


class Handover(Exception):
    """Between two trials: this process has grown enough to hand over to a fresh one."""


class _Recording:
    """Mixed into a Keras Tuner class: seeds each trial from its id, keeps its attempts, wall
    time, epochs, size and memory in its folder, fails a trial whose process keeps dying, and
    hands over to a fresh process once this one has grown by ``max_growth_mb``."""

    max_growth_mb: float | None = None  # None: every trial in this process
    _baseline_mb: float | None = None  # memory after this process's first completed trial

    def pre_create_trial(self):
        super().pre_create_trial()
        if self.max_growth_mb is None or self._baseline_mb is None or self._budget_spent():
            return
        if self.max_growth_mb <= 0 or _rss_mb() - self._baseline_mb > self.max_growth_mb:
            raise Handover

    def _budget_spent(self) -> bool:
        """Whether the oracle will only say stop: then this process says it, not a new one."""
        oracle = self.oracle
        trials, limit = getattr(oracle, "trials", None), getattr(oracle, "max_trials", None)
        created_all = bool(limit) and trials is not None and len(trials) >= limit
        return created_all and not retries_pending(oracle)

    def run_trial(self, trial, *args, **kwargs):
        # one file per trial: workers of a distributed search write side by side
        path = Path(self.get_trial_dir(trial.trial_id)) / EXTRA
        record = _io.read_json(path)
        started = record.get("started", 0)
        died = started - record.get("finished", 0)
        if died >= MAX_DEATHS:
            raise kt.errors.FailedTrialError(
                f"the process running this trial ended {died} times before the trial did "
                "(killed, or out of memory); not run again"
            )
        _io.write_json(path, {**record, "started": started + 1})
        # the same trial gives the same model whichever process runs it, after whatever
        keras.utils.set_random_seed(self.hypermodel.experiment.seed + int(trial.trial_id))
        completed, measured = False, {}
        try:
            result = super().run_trial(trial, *args, **kwargs)
            completed = True
            histories = result if isinstance(result, list) else [result]
            measured = getattr(histories[-1], "trial_record", {})
        except Exception as error:
            measured = getattr(error, "trial_record", {})
            raise
        finally:
            # Keras Tuner clears the session before a build; clearing after the trial too
            # (with a garbage collection) returns its graphs before the next one.
            keras.backend.clear_session(free_memory=True)
            rss = _rss_mb()
            if completed and self._baseline_mb is None:
                self._baseline_mb = rss
            record = {**record, **measured, "rss_mb": round(rss, 1), "pid": os.getpid()}
            _io.write_json(path, {**record, "started": started + 1, "finished": started + 1})
        return result


class RecordingRandomSearch(_Recording, kt.RandomSearch):
    pass


class RecordingHyperband(_Recording, kt.Hyperband):
    pass


class RecordingBayesianOptimization(_Recording, kt.BayesianOptimization):
    pass


TUNER_CLASSES = {
    "random": RecordingRandomSearch,
    "hyperband": RecordingHyperband,
    "bayesian": RecordingBayesianOptimization,
}


def make_tuner(
    experiment: Experiment,
    hypermodel: ZooHyperModel,
    max_growth_mb: float | None = None,
    verbose: int = 1,
):
    """The experiment's Keras Tuner tuner, reloaded from its folder when one is there."""
    cls = TUNER_CLASSES[experiment.tuner]
    single_process(experiment.distribute, "tune")
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(experiment.objective, direction=experiment.direction),
        seed=experiment.seed,
        directory=str(experiment.out),
        project_name=PROJECT,
        overwrite=False,
        max_retries_per_trial=experiment.retry_failed,
        max_consecutive_failed_trials=3,
        # each trial's model is built in its scope (and trained under it)
        distribution_strategy=make_strategy(experiment.distribute, experiment.devices, verbose),
    )
    if experiment.tuner == "hyperband":
        tuner = cls(max_epochs=experiment.epochs, hyperband_iterations=1, **common)
    else:
        tuner = cls(max_trials=experiment.max_trials, **common)
    tuner.max_growth_mb = max_growth_mb
    return tuner
