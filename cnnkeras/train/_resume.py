"""Reading an unfinished run back: its record checked before anything changes (``read_run``),
its last checkpoint ready to train on, and the callbacks' state rebuilt from its history."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import keras

from cnnkeras import _io
from cnnkeras._files import CONFIG_FILE, MODEL_FILE, SPLITS_FILE
from cnnkeras._keras_internals import build_training_state
from cnnkeras.data import ImageDataset, Preprocessing, absolute_spec
from cnnkeras.errors import UserError
from cnnkeras.saved import load_keras
from cnnkeras.train._callbacks import (
    MONITOR,
    EarlyStopState,
    PlateauState,
    score,
    seeds_file,
    set_seed_states,
    warm_up_average,
)
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import for_strategy, scope
from cnnkeras.train._plan import TrainingPlan

DONE = ("done", "early_stopped", "nan")  # the statuses of a finished run


def read_run(
    run: Path, config_class: type[TrainConfig] = TrainConfig
) -> tuple[dict, TrainingPlan, TrainConfig]:
    """A run folder's record, plan and options (a ``config_class``), checked before anything
    is changed: a record that is missing, cut short or edited into what cnnkeras never wrote
    is one line naming the file and the field."""
    path = run / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{run} is not a run folder (no config.json); start one with train")
    record = _io.read_json(path)
    try:
        plan = TrainingPlan.from_dict(record["plan"])
        config = config_class.from_record({**record, "schedule": plan.schedule})
        Preprocessing.from_dict(record["preprocessing"])
        config.validate()
    except KeyError as err:
        raise UserError(f"{path} has no field {err.args[0]!r}; restore the file") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise UserError(
            f"{path} has a field cnnkeras did not write ({err}); restore the file"
        ) from None
    return record, plan, config


def resumed_dataset(config: TrainConfig, dataset: str | None) -> TrainConfig:
    """``config`` with the data it resumes on: ``dataset`` (a folder:PATH) where a folder
    run's images moved, else as recorded."""
    if not dataset:
        return config
    if not (config.dataset.startswith("folder:") and dataset.startswith("folder:")):
        raise UserError(
            "`dataset` with `resume` points a run on folder:PATH at the folder's new place; "
            f"this run trained on {config.dataset}"
        )
    return dataclasses.replace(config, dataset=absolute_spec(dataset))


def load_checkpoint(path: Path, epoch: int, strategy=None) -> tuple[keras.Model, int]:
    """An epoch checkpoint (``last_checkpoint``), ready to train on: its optimizer, weight
    average and dropout seeds as they were; and its epoch."""
    with scope(strategy):
        model = for_strategy(load_keras(path), strategy)
        if model.optimizer is None:
            raise UserError(f"{path} holds no optimizer state; it is not a cnnkeras checkpoint")
        build_training_state(model)  # the metrics: the optimizer comes built from the file
    if model.optimizer.use_ema:
        warm_up_average(model.optimizer)
    seeds = seeds_file(path)
    if seeds.is_file():  # written by every run since seeds were saved
        try:
            set_seed_states(model, json.loads(_io.read_text(seeds)))
        except (ValueError, TypeError) as err:
            raise UserError(f"{seeds} does not fit its checkpoint ({err}); restore it") from None
    return model, epoch


def relocate(run: Path, record: dict, data: ImageDataset) -> None:
    """Record a folder run's data at its new place (config.json and splits.json)."""
    _io.write_json(run / SPLITS_FILE, data.split_record())
    record["dataset"] = data.spec
    _io.write_json(run / CONFIG_FILE, {**_io.read_json(run / CONFIG_FILE), "dataset": data.spec})


@dataclass(frozen=True)
class ResumeState:
    """What the callbacks held after the last completed epoch, rebuilt from the history rows:
    the best model's score and epoch, and the early-stopping and plateau counters."""

    best: tuple[tuple[float, float], int] | None = None  # (score, epoch)
    early_stop: EarlyStopState | None = None
    plateau: PlateauState | None = None

    @classmethod
    def from_history(cls, rows: list[dict], counts_from: int, since: int = 0) -> ResumeState:
        """``counts_from``: the first epoch early stopping counts (the plan's); ``since``: the
        first epoch of the phase the counters started in (fine-tuning's second phase starts
        them anew; the best model is the best of all epochs)."""
        if not rows:
            return cls()
        values = [score(r) or (-math.inf, -math.inf) for r in rows]
        best_i = max(range(len(values)), key=values.__getitem__)
        last_epoch = int(rows[-1]["epoch"])
        best_epoch = int(rows[best_i]["epoch"])
        phase = [i for i, r in enumerate(rows) if r["epoch"] >= since]
        counted = [i for i in phase if rows[i]["epoch"] >= counts_from]
        early_stop = None
        if counted:
            i = max(counted, key=values.__getitem__)
            epoch = int(rows[i]["epoch"])
            early_stop = EarlyStopState(wait=last_epoch - epoch, best=values[i], best_epoch=epoch)
        plateau = _replay_plateau([rows[i] for i in phase]) if phase else None
        return cls((values[best_i], best_epoch), early_stop, plateau)

    def stopped(self, patience: int) -> bool:
        """Whether early stopping ended training at the last epoch (as Keras decides it)."""
        stop = self.early_stop
        return stop is not None and stop.wait >= patience and stop.best_epoch + stop.wait > 0

    def save_best(self, model: keras.Model, run: Path, rows: list[dict]) -> None:
        """A run killed after its last epoch's checkpoint but before its best model: that
        epoch was the best, and the checkpoint (``model``) is it."""
        if self.best is not None and rows and self.best[1] == int(rows[-1]["epoch"]):
            _io.save_model(model, run / MODEL_FILE)


FRESH = ResumeState()  # a run's first epoch: nothing to restore


def _replay_plateau(rows: list[dict]) -> PlateauState:
    """ReduceLROnPlateau's counters after ``rows``, replayed as Keras counts them: the wait
    grows on every epoch without a strictly better validation accuracy and starts again at
    a better one or at a reduction (the rows' learning rate drops)."""
    best, wait = -math.inf, 0
    for previous, row in zip([None, *rows], rows, strict=False):
        if row[MONITOR] > best:
            best, wait = row[MONITOR], 0
        else:
            wait += 1
            if previous is not None and row["lr"] < previous["lr"]:
                wait = 0
    return PlateauState(wait=wait, best=best)
