"""The training loop around ``model.fit`` and the run folder it fills.

Crash safety: after every epoch the history row is appended first, then the full model with
its optimizer state is saved atomically as ``checkpoint/epoch-NNNN.keras`` (the commit point),
then the best model. Resuming loads the newest checkpoint, drops history rows past it, and
rebuilds the early-stopping and learning-rate state from the history itself; the plan
(batch size, steps per execution, schedule, cache) and the split come from the run folder.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from cnnkeras import _io
from cnnkeras._files import CHECKPOINTS, HISTORY_FILE, MODEL_FILE
from cnnkeras.data import (
    CHECK_FILE,
    CHECK_PAGE,
    ImageDataset,
    Preprocessing,
    absolute_spec,
    check_dataset,
    load_dataset,
    make_pipeline,
    write_check,
)
from cnnkeras.data._pipeline import DecodeTally, SplitImages
from cnnkeras.data._preview import batch_png
from cnnkeras.errors import UserError
from cnnkeras.evaluate import write_report
from cnnkeras.evaluate._plots import training_curves_png
from cnnkeras.models import create_model, model_info
from cnnkeras.saved import (
    BATCH_FILE,
    CONFIG_FILE,
    LABELS_FILE,
    SPLITS_FILE,
    load_keras,
    model_record,
    predict_split,
)
from cnnkeras.train import _multihost, _precision
from cnnkeras.train._calibrate import confidence_lines, confident_best
from cnnkeras.train._callbacks import (
    MONITOR,
    AveragedWeights,
    EarlyStopState,
    PlateauState,
    PreciseBatchNorm,
    ResumableEarlyStopping,
    ResumableReduceLR,
    RunCheckpoint,
    TimeBudget,
    last_checkpoint,
    learning_rate,
    score,
    seeds_file,
    set_seed_states,
    trainable_batch_norms,
    warm_up_average,
)
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import (
    for_strategy,
    make_strategy,
    model_scope,
    replicas,
    scope,
    single_process,
)
from cnnkeras.train._history import read_history, write_history
from cnnkeras.train._lr_find import (
    PNG,
    START_LR,
    STEPS,
    LRFinding,
    check_range,
    find_lr,
    lr_find_png,
)
from cnnkeras.train._plan import TrainingPlan, plan_training
from cnnkeras.train._verdict import learned_nothing

CACHE_DIR = "cache"


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


def compile_for_training(
    model: keras.Model, config: TrainConfig, plan: TrainingPlan | None = None, **overrides
) -> None:
    """The optimizer (with the plan's schedule), loss and metrics of a run; the bench
    measures exactly this path. In the scope of the strategy the model was created under
    (mirrored training: the optimizer's variables are mirrored too)."""
    with model_scope(model):
        _compile(model, config, plan, **overrides)


def _compile(model: keras.Model, config: TrainConfig, plan: TrainingPlan | None, **overrides):
    lr = learning_rate(config.lr, plan)
    # Keras applies weight_decay decoupled from the gradient (Loshchilov & Hutter): Adam with
    # it is AdamW. The optimizer keeps the weights' moving average inside its step (a
    # callback would see only every steps_per_execution-th step).
    decay = {"weight_decay": config.weight_decay or None}
    if config.ema:
        decay.update(use_ema=True, ema_momentum=config.ema)
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(lr, **decay),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=config.momentum, **decay),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr, momentum=config.momentum, **decay),
    }[config.optimizer]()
    if config.loss == "mse":
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    if config.ema:
        warm_up_average(optimizer)
    # Measured in BENCHMARKS.md on a 2-core CPU: several steps per tf.function call are up to
    # 1.5x faster than one, when they divide the epoch; XLA (jit_compile) is slower there,
    # and op determinism turns it off anyway.
    spe = plan.steps_per_execution if plan else 32
    # JAX runs a step eagerly, op by op, unless it is compiled: there it always is
    jax = keras.backend.backend() == "jax"
    options = {"jit_compile": jax, "steps_per_execution": spe, **overrides}
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], **options)


# ---------------------------------------------------------------- runs


def claim_run_dir(config: TrainConfig, dataset_name: str) -> Path:
    """A new run folder under ``config.out`` (saved_models), named after the architecture,
    the data and the time, created here: ``mkdir`` refuses a folder that exists, so two runs
    started in the same second take the next free name and never share one."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(config.out) if config.out else Path("saved_models")
    name = f"{config.arch}-{_io.safe_name(dataset_name)}-{stamp}"
    base.mkdir(parents=True, exist_ok=True)
    for suffix in itertools.count(1):
        run = base / (name if suffix == 1 else f"{name}-{suffix}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


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


def make_plan(
    config: TrainConfig, data, prep: Preprocessing, verbose: int, *, replicas: int = 1
) -> TrainingPlan:
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


@dataclass
class Run:
    """A run folder and what trains into it. ``train``, ``resume`` and ``finetune`` make one;
    ``fit_epochs`` and ``finish_run`` take it."""

    folder: Path
    config: TrainConfig
    plan: TrainingPlan
    data: ImageDataset
    prep: Preprocessing
    model: keras.Model
    record: dict  # what config.json holds
    title: str  # of the test-split report


def start_run(
    folder: Path,
    config: TrainConfig,
    options: dict,
    data,
    prep,
    model,
    plan,
    *,
    title: str,
    verbose: int,
    restart: bool = False,
) -> Run:
    """Create the run folder with config.json, splits.json and labels.txt; refuse to
    overwrite a run, unless ``restart`` (a run killed before its first epoch completed,
    started again in its folder: its files are replaced only now, when all is ready)."""
    if (folder / CONFIG_FILE).exists() and not restart:
        raise UserError(f"{folder} already holds a run; continue it with `resume`")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / HISTORY_FILE).unlink(missing_ok=True)
    split = data.split_record()
    _io.write_json(folder / SPLITS_FILE, split)
    record = {
        **model_record("run", prep, data.class_names, config.dataset, config.seed),
        **options,
        "splits": {k: len(v) for k, v in data.splits.items()},
        "split": {"file": SPLITS_FILE, "seed": data.seed, "sha256": split["sha256"]},
        "plan": plan.to_dict(),
        "skipped_files": len(data.skipped),
        "params": int(model.count_params()),
        "replicas": replicas(model),
        "versions": versions(),
        "created": datetime.now().isoformat(timespec="seconds"),
        "status": "running",
    }
    _io.write_json(folder / CONFIG_FILE, record)
    _io.write_text(folder / LABELS_FILE, "\n".join(data.class_names) + "\n")
    _io.write_bytes(folder / BATCH_FILE, first_batch_png(data, prep, plan, config.seed))
    if data.splits["train"].paths is not None:  # users' own images: look at them first
        check = check_dataset(data, verbose=verbose)
        write_check(folder, check, data)
        _io.log(verbose, check.summary())
        for warning in check.warnings():
            _io.log(verbose, f"data check: {warning}")
    _io.log(verbose, f"run folder: {folder}")
    return Run(folder, config, plan, data, prep, model, record, title)


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


def _title(config: TrainConfig) -> str:
    return f"{config.arch} on {config.dataset}: test split"


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
    model = _precision.build("float32" if asked == "auto" else asked, make)
    plan = make_plan(config, data, prep, verbose, replicas=replicas(model))
    if asked != "float32":
        precision, why = _precision.choose(
            asked, make, plan.batch_size, lambda m: compile_for_training(m, config, plan)
        )
        _io.log(verbose, why)
        plan = dataclasses.replace(plan, precision=precision, reasons=(*plan.reasons, why))
        if asked == "auto":  # its probe may have drawn weights: the run's are the seed's
            seed_everything(config.seed)
            model = _precision.build(precision, make)
    return size, data, prep, for_strategy(model, strategy), plan


def lr_find(
    config: TrainConfig, *, steps: int = STEPS, plot: str | Path | None = None, verbose: int = 1
) -> LRFinding:
    """The learning-rate range test of ``config``'s model, data and recipe (its ``lr`` is
    ignored); with ``plot``, the loss against the learning rate as a PNG there."""
    check_range(steps)
    single_process(config.distribute, "lr-find")
    _, data, prep, model, plan = prepare(config, verbose)
    config = dataclasses.replace(config, lr=START_LR)
    found = find_lr(model, config, plan, data, prep, steps=steps, verbose=verbose)
    if plot:
        _io.write_bytes(Path(plot), lr_find_png(found, f"{config.arch} on {config.dataset}"))
    return found


def auto_lr(config: TrainConfig, model, plan, data, prep, verbose: int = 1):
    """``config`` with ``lr='auto'`` replaced by the range test's suggestion on ``model``
    (whose weights it leaves as they were), and the finding; any other config unchanged,
    with None."""
    if config.lr != "auto":
        return config, None
    single_process(config.distribute, "`lr` auto (run lr-find without it, then pass --lr)")
    config = dataclasses.replace(config, lr=START_LR)
    found = find_lr(model, config, plan, data, prep, verbose=verbose)
    _io.log(verbose, found.text())
    return dataclasses.replace(config, lr=found.suggestion), found


def lr_find_record(found: LRFinding | None) -> dict:
    """What config.json records of a range test (its curve goes to lr_find.png)."""
    if found is None:
        return {}
    return {
        "lr_find": {
            "suggestion": found.suggestion,
            "rule": found.rule,
            **found.others,
            "diverged_at": found.diverged_at,
            "steps": len(found.lrs),
            "plot": PNG,
        }
    }


def train(
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    verbose: int = 1,
    record: dict | None = None,
    restart: bool = False,
) -> dict:
    """Train ``config.arch`` on ``config.dataset`` into a new run folder; return the summary.
    ``lr='auto'`` runs the learning-rate range test first and trains at its suggestion
    (recorded in config.json, with the curve as lr_find.png). ``record``: more fields for
    config.json (a run started again keeps where its rate came from); ``restart``: start
    again in ``run_dir``, a run that never completed an epoch."""
    config = dataclasses.replace(config, dataset=absolute_spec(config.dataset))
    _io.check_writable(Path(run_dir).parent if run_dir else config.out)
    size, data, prep, model, plan = prepare(config, verbose)
    config, found = auto_lr(config, model, plan, data, prep, verbose)
    compile_for_training(model, config, plan)
    cluster = _multihost.current()
    if cluster is not None and not cluster.writer:  # process 0 writes the run folder
        folder, verbose = _multihost.scratch_folder(Path("run"), copy=False), 0
    else:
        folder = Path(run_dir) if run_dir else claim_run_dir(config, data.name)
    options = {**config.to_dict(), "image_size": size, **(record or {}), **lr_find_record(found)}
    run = start_run(
        folder,
        config,
        options,
        data,
        prep,
        model,
        plan,
        title=_title(config),
        verbose=verbose,
        restart=restart,
    )
    if found is not None:
        _io.write_bytes(folder / PNG, lr_find_png(found, f"{config.arch} on {config.dataset}"))
    return _fit(run, start_epoch=0, verbose=verbose)


def _legacy_plan(record: dict) -> TrainingPlan:
    """The plan of a run written before plans were recorded: what training did then."""
    batch = int(record["batch_size"])
    steps = math.ceil(record["splits"]["train"] / batch)
    val = record["splits"]["val"]
    return TrainingPlan(
        batch_size=batch,
        steps_per_epoch=steps,
        steps_per_execution=32,
        val_batch_size=256,
        val_steps=math.ceil(val / 256),
        cache="memory",
        schedule="plateau",
        warmup_epochs=0,
        epochs=int(record["epochs"]),
        augment=tuple(record["augment"]),
    )


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
        plan = TrainingPlan.from_dict(record["plan"]) if "plan" in record else _legacy_plan(record)
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


def resume_training(
    run: Path,
    record: dict,
    plan: TrainingPlan,
    config: TrainConfig,
    *,
    dataset: str | None,
    verbose: int,
) -> dict:
    """Continue an unfinished training run (``read_run``'s record, plan and options) from its
    last completed epoch, with what it would have seen had it not stopped (``resume``)."""
    config = resumed_dataset(config, dataset)
    strategy = make_strategy(config.distribute, config.devices, verbose)  # before TF's devices
    cluster = _multihost.current()
    if cluster is not None and cluster.process_id == 0:
        _multihost.barrier("resume: copied")  # before process 0 changes the folder
    elif cluster is not None:  # works on a copy; process 0 writes the run folder
        run, verbose = _multihost.scratch_folder(run, copy=True), 0
        _multihost.barrier("resume: copied")
    seed_everything(config.seed)
    data = load_data(config, run, verbose)
    last = last_checkpoint(run)
    if last is None:  # killed during the first epoch: start over in the same folder
        _io.log(verbose, "no completed epoch to resume from; starting the run again")
        kept = {k: record[k] for k in ("lr_find",) if k in record}  # the rate's origin
        if cluster is not None and not cluster.writer:
            _multihost.discard_scratch(run)  # train gives this process a scratch folder anew
        return train(config, run_dir=run, verbose=verbose, record=kept, restart=True)
    model, epoch = load_checkpoint(*last, strategy)
    rows = [r for r in read_history(run / HISTORY_FILE) if r["epoch"] <= epoch]
    state = ResumeState.from_history(rows, plan.early_stop_from)
    # checked; from here on the run's files change
    if config.dataset != record["dataset"]:
        relocate(run, record, data)
    write_history(run / HISTORY_FILE, rows)
    state.save_best(model, run, rows)
    resumed = Run(
        run,
        config,
        plan,
        data,
        Preprocessing.from_dict(record["preprocessing"]),
        model,
        record,
        _title(config),
    )
    if state.stopped(config.patience):  # killed after early stopping, before the report
        return _finish(resumed, time.perf_counter(), verbose, status="early_stopped")
    _io.log(verbose, f"resuming {run} after epoch {epoch + 1} of {plan.epochs}")
    return _fit(resumed, start_epoch=epoch + 1, verbose=verbose, state=state)


def load_checkpoint(path: Path, epoch: int, strategy=None) -> tuple[keras.Model, int]:
    """An epoch checkpoint (``last_checkpoint``), ready to train on: its optimizer, weight
    average and dropout seeds as they were; and its epoch."""
    with scope(strategy):
        model = for_strategy(load_keras(path), strategy)
    if model.optimizer is None:
        raise UserError(f"{path} holds no optimizer state; it is not a cnnkeras checkpoint")
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


def plan_pipelines(
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


def fit_epochs(
    run: Run,
    *,
    start_epoch: int,
    epochs: int,
    verbose: int,
    state: ResumeState = ResumeState(),
    extra: dict | None = None,
) -> RunCheckpoint:
    """``model.fit`` from ``start_epoch`` to ``epochs`` with the run's callbacks, which start
    from ``state`` (after a restart, or the best model of an earlier phase)."""
    config, plan, data, folder = run.config, run.plan, run.data, run.folder
    averaged = [AveragedWeights()] if run.model.optimizer.use_ema else []
    checkpoint = RunCheckpoint(
        folder, *(state.best or ()), extra=extra, averaged=averaged[0] if averaged else None
    )
    tallies = {name: DecodeTally(data.splits[name]) for name in ("train", "val")}
    fit_data = plan_pipelines(
        run.model,
        data,
        run.prep,
        plan,
        seed=config.seed,
        augment=plan.augment,
        cache_dir=folder / CACHE_DIR,
        tallies=tallies,
        start_epoch=start_epoch,
    )
    plateau = (
        [
            ResumableReduceLR(
                monitor=MONITOR,
                mode="max",
                factor=0.5,
                patience=max(2, config.patience // 3),
                min_lr=config.lr / 100,
                restore=state.plateau,
            )
        ]
        if plan.schedule == "plateau"
        else []
    )
    callbacks = [
        *averaged,  # first: the averaged weights are what validation and precise BN see
        *fit_data.callbacks,  # next: validation must see the recomputed statistics
        ResumableEarlyStopping(
            monitor=MONITOR,
            mode="max",
            patience=config.patience,
            start_from_epoch=plan.early_stop_from,
            restore=state.early_stop,
        ),
        *plateau,
        keras.callbacks.TensorBoard(log_dir=str(folder / "logs"), write_graph=False),
        checkpoint,  # last: it records the learning rate after any reduction
    ]
    if config.budget_seconds:
        callbacks.append(TimeBudget(config.budget_seconds))
    if start_epoch < epochs:
        run.model.fit(
            **fit_data.fit_kwargs(),
            epochs=epochs,
            initial_epoch=start_epoch,
            callbacks=callbacks,
            verbose=2 if verbose else 0,
            shuffle=False,
        )
        _report_decode_failures(folder, [tallies["train"], tallies["val"]], verbose)
    if checkpoint.nan_epoch is not None:
        _io.log(
            1,
            f"loss became NaN at epoch {checkpoint.nan_epoch + 1}; stopped and kept the "
            f"best model (epoch {checkpoint.best_epoch + 1}); try a lower `lr`",
        )
    return checkpoint


def _report_decode_failures(run: Path, tallies: list[DecodeTally], verbose: int) -> list[str]:
    """Files that failed to decode during training: counted in config.json, listed in
    skipped.txt, and said once."""
    failed = sorted({path for tally in tallies for path in tally.failed()})
    if failed:
        _io.write_text(run / "skipped.txt", "\n".join(failed) + "\n")
        record = _io.read_json(run / CONFIG_FILE)
        record["decode_failures"] = len(failed)
        _io.write_json(run / CONFIG_FILE, record)
        _io.log(
            verbose,
            f"skipped {len(failed)} file(s) that failed to decode, e.g. "
            f"{failed[0]}; list in {run / 'skipped.txt'}",
        )
    return failed


def finish_run(run: Run, *, status: str, seconds: float, verbose: int) -> dict:
    """Training curves, the test-split report of the best model, and the final config.json."""
    data, prep, record, plan, title = run.data, run.prep, run.record, run.plan, run.title
    config, run = run.config, run.folder
    rows = read_history(run / HISTORY_FILE)
    if not (run / MODEL_FILE).is_file():
        raise UserError(f"training stopped before any epoch completed ({status}); try a lower `lr`")
    history = {k: [r[k] for r in rows] for k in (rows[0] if rows else {})}
    curves = training_curves_png(history)
    _io.write_bytes(run / "training_curves.png", curves)
    if plan.precision != "float32":  # reports and exports: a float32 model
        _precision.save_float32(run / MODEL_FILE)
    best, confidence = confident_best(run, config, data, prep)
    warning = learned_nothing(rows, data.splits["val"].labels, data.num_classes, plan)
    about = {
        "model": f"{record.get('arch')} ({record.get('params', 0):,} parameters), {run}",
        "data": f"{record.get('dataset')}: "
        + ", ".join(f"{n} {k}" for k, n in record.get("splits", {}).items())
        + " images",
        "training": f"{len(rows)} epochs ({status})",
    }
    if warning:
        about["warning"] = warning["message"]
    checked = _io.read_json(run / CHECK_FILE)
    if checked:
        about["data check"] = f"{checked['summary'].removeprefix('data check: ')} ({CHECK_PAGE})"
    test = data.splits["test"]
    scores, kept = predict_split(best, test, prep)
    if len(kept) < len(test):
        _io.log(verbose, f"{len(test) - len(kept)} test image(s) failed to decode; left out")
    metrics = write_report(
        run,
        test.labels[kept],
        scores,
        data.class_names,
        images=SplitImages(test.subset(kept), prep),
        title=title,
        model=best,
        about=about,
        curves=curves,
        extra=confidence,
    )
    best_i = max(range(len(rows)), key=lambda i: score(rows[i])) if rows else -1
    result = {
        "run_dir": str(run),
        "status": status,
        "epochs_run": len(rows),
        "best_epoch": best_i + 1,
        "val_accuracy": rows[best_i][MONITOR] if rows else 0.0,
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["f1"]["macro"],
        "test_mAP": metrics["mAP"],
        "fit_seconds": round(seconds, 2),
    }
    if warning:
        result["learned_nothing"] = warning
        _io.log(verbose, f"warning: {warning['message']}")
    if "temperature_scaling" in confidence:
        result["temperature"] = confidence["temperature_scaling"]["temperature"]
    for line in confidence_lines(confidence, metrics["calibration"]["ece"]):
        _io.log(verbose, line)
    record = {**_io.read_json(run / CONFIG_FILE), **record, "status": status, "result": result}
    if "temperature_scaling" in confidence:
        record["calibration"] = confidence["temperature_scaling"]
    if "score_threshold" in confidence:
        record["score_threshold"] = confidence["score_threshold"]
    _io.write_json(run / CONFIG_FILE, record)
    shutil.rmtree(run / CHECKPOINTS, ignore_errors=True)
    shutil.rmtree(run / CACHE_DIR, ignore_errors=True)
    _io.log(
        verbose,
        f"test accuracy {result['test_accuracy']:.4f} (macro F1 "
        f"{result['test_macro_f1']:.4f}, mAP {result['test_mAP']:.4f}); "
        f"report: {run / 'report.html'}",
    )
    return result


def _fit(run: Run, *, start_epoch: int, verbose: int, state: ResumeState = ResumeState()):
    started = time.perf_counter()
    try:
        checkpoint = fit_epochs(
            run, start_epoch=start_epoch, epochs=run.plan.epochs, verbose=verbose, state=state
        )
    except Exception as error:
        if _multihost.current() is None:
            raise
        _multihost.abandon(error, run.folder)
    status = "nan" if checkpoint.nan_epoch is not None else None
    return _finish(run, started, verbose, status=status)


def _finish(run: Run, started: float, verbose: int, *, status: str | None = None) -> dict:
    """The report of a run whose training ended (``status``, or done or early stopped as its
    history says)."""
    rows = read_history(run.folder / HISTORY_FILE)
    if status is None:
        status = "early_stopped" if len(rows) < run.plan.epochs else "done"
    seconds = time.perf_counter() - started
    cluster = _multihost.current()
    if cluster is not None:
        if not cluster.writer:
            _multihost.discard_scratch(run.folder)
            return {"status": status, "process": cluster.process_id, "fit_seconds": seconds}
        return _multihost.finish_in_tensorflow(run.folder, status, seconds, verbose)
    return finish_run(run, status=status, seconds=seconds, verbose=verbose)
