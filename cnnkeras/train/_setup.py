"""What a run starts from, before any run folder: the seed, the data, the preprocessing, the
plan and a new model (``prepare``); ``train``, ``lr-find``, ``data preview``, the tuner and the
benchmarks share it."""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnkeras import _io
from cnnkeras._files import SPLITS_FILE
from cnnkeras.data import ImageDataset, Preprocessing, batch_png, load_dataset
from cnnkeras.errors import UserError
from cnnkeras.models import create_model, model_info
from cnnkeras.train import _precision
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import for_strategy, make_strategy, replicas, scope
from cnnkeras.train._optim import compile_for_training
from cnnkeras.train._plan import TrainingPlan, plan_training


def versions() -> dict:
    import sklearn

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "cnnkeras": __import__("cnnkeras").__version__,
    }


def seed_everything(seed: int) -> None:
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def preprocessing_for(arch: str, size: int, channels: int, resize: str = "phone") -> Preprocessing:
    """Pixels scaled as the family's models expect them (0..1, or 0..255 for those that
    rescale inside, as EfficientNet), resized as ``resize`` says (RESIZES)."""
    scale = model_info(arch).facts.input_scale
    return Preprocessing(size, size, channels, scale=scale, resize=resize)


def input_size(config: TrainConfig) -> int:
    """The side of the model's input: the config's, or its architecture's; refused below the
    architecture's minimum."""
    info = model_info(config.arch)
    size = info.image_size(config.image_size)
    if size < info.min_size:
        raise UserError(
            f"`image_size` {size} is below {config.arch}'s minimum of {info.min_size}; "
            f"pass {info.min_size} or more"
        )
    return size


def load_data(config: TrainConfig, run: Path | None = None, verbose: int = 1):
    """The run's dataset: as its splits.json recorded it when there is one, else loaded and
    split afresh from the config's spec and seed."""
    record = _io.read_json(run / SPLITS_FILE) if run is not None else {}
    data = load_dataset(config.dataset, seed=config.seed, record=record or None, verbose=verbose)
    for note in data.notes:
        _io.log(verbose, note)
    if data.skipped:
        _io.log(
            verbose,
            f"skipped {len(data.skipped)} file(s) that are missing or not images, e.g. "
            f"{data.skipped[0]}",
        )
    return data


def plan_run(
    config: TrainConfig, data, prep: Preprocessing, verbose: int, *, replicas: int = 1
) -> TrainingPlan:
    """``plan_training`` of ``config`` on ``data``'s splits, each of its reasons said."""
    train = data.splits["train"]
    plan = plan_training(
        config,
        len(train),
        len(data.splits["val"]),
        prep,
        config.cache_budget_mb,
        labels=train.labels,
        class_names=data.class_names,
        replicas=replicas,
    )
    for reason in plan.reasons:
        _io.log(verbose, reason)
    return plan


def first_batch_png(
    data: ImageDataset, prep: Preprocessing, plan: TrainingPlan, seed: int
) -> bytes:
    """What the model sees in training's first step under ``plan``, as a captioned grid: a
    run's train_batch.png, and ``cnnkeras data preview``."""
    return batch_png(
        data.splits["train"],
        data.class_names,
        prep,
        augment=plan.augment,
        mix=dict(plan.mix),
        seed=seed,
        batch_size=plan.batch_size,
    )


def prepare(config: TrainConfig, verbose: int = 1):
    """What a training run starts from: (image size, data, preprocessing, a new model, the
    plan), after checking the config; ``train`` and ``lr_find`` share it. The model is built
    for the config's strategy (``distribute``), in its scope."""
    config.validate()
    strategy = make_strategy(config.distribute, config.devices, verbose)  # before TF's devices
    seed_everything(config.seed)
    size = input_size(config)
    data = load_data(config, verbose=verbose)
    prep = preprocessing_for(config.arch, size, data.channels, config.resize)

    def make() -> keras.Model:
        with scope(strategy):
            return create_model(
                config.arch,
                input_shape=prep.input_shape,
                num_classes=data.num_classes,
                **config.builder_options(),
            )

    asked = config.precision
    model = _precision.build_in_precision("float32" if asked == "auto" else asked, make)
    plan = plan_run(config, data, prep, verbose, replicas=replicas(model))
    if asked != "float32":
        choice = _precision.choose(
            asked, make, plan.batch_size, lambda m: compile_for_training(m, config, plan)
        )
        _io.log(verbose, choice.why)
        plan = dataclasses.replace(
            plan,
            precision=choice.precision,
            float32_layers=choice.float32_layers,
            reasons=(*plan.reasons, choice.why),
        )
        if asked == "auto":  # its probe may have drawn weights: the run's are the seed's
            seed_everything(config.seed)
            model = _precision.build_in_precision(choice.precision, make, choice.float32_layers)
    return size, data, prep, for_strategy(model, strategy), plan
