"""The training loop around ``model.fit`` and the run folder it fills.

Crash safety: after every epoch the history row is appended first, then the full model with
its optimizer state is saved atomically as ``checkpoint/epoch-NNNN.keras`` (the commit point),
then the best model. Resuming loads the newest checkpoint, drops history rows past it, and
rebuilds the early-stopping and learning-rate state from the history itself.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import platform
import time
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnkeras import _io
from cnnkeras.data import Preprocessing, load_dataset, make_pipeline
from cnnkeras.errors import UserError
from cnnkeras.evaluate import predict_split, write_report
from cnnkeras.evaluate._plots import training_curves_png
from cnnkeras.models import create_model, model_info
from cnnkeras.train._config import TrainConfig

MONITOR = "val_accuracy"
CHECKPOINTS = "checkpoint"


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


def preprocessing_for(arch: str, size: int, channels: int) -> Preprocessing:
    """[0, 1] pixels, except EfficientNet, whose models rescale 0..255 input themselves."""
    scale = 1.0 if model_info(arch).family == "efficientnet" else 1.0 / 255.0
    return Preprocessing(size, size, channels, scale=scale)


def compile_for_training(model: keras.Model, config: TrainConfig, **overrides) -> None:
    """The optimizer, loss and metrics of a run; the bench measures exactly this path."""
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(config.lr),
        "sgd": lambda: keras.optimizers.SGD(config.lr, momentum=config.momentum),
        "rmsprop": lambda: keras.optimizers.RMSprop(config.lr, momentum=config.momentum),
    }[config.optimizer]()
    if config.loss == "mse":
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    # Measured in BENCHMARKS.md on a 2-core CPU: running 32 steps per tf.function call is 1.5x
    # faster for LeNet-5 than one; XLA (jit_compile) is slower there, and op determinism turns
    # it off anyway.
    options = {"jit_compile": False, "steps_per_execution": 32, **overrides}
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], **options)


# ---------------------------------------------------------------- history.csv


def read_history(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _write_history(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.unlink(missing_ok=True)
        return
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(_cell(r[k]) for k in keys) for r in rows]
    _io.write_text(path, "\n".join(lines) + "\n")


def _cell(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(value)


def _append_history(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        if new:
            f.write(",".join(row) + "\n")
        f.write(",".join(_cell(v) for v in row.values()) + "\n")
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- callbacks


class RunCheckpoint(keras.callbacks.Callback):
    """History row, then the epoch checkpoint (commit point), then the best model.

    A non-finite loss stops training before anything of that epoch is written, so the best
    model so far is kept.
    """

    def __init__(
        self,
        run_dir: Path,
        best: float = -math.inf,
        best_epoch: int = -1,
        extra: dict | None = None,
    ):
        super().__init__()
        self.run_dir = run_dir
        self.extra = extra or {}
        self.best = best
        self.best_epoch = best_epoch
        self.nan_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs=None):
        logs = dict(logs or {})
        if not all(math.isfinite(float(v)) for v in logs.values()):
            self.nan_epoch = epoch
            self.model.stop_training = True
            return
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch, **{k: float(v) for k, v in logs.items() if k != "learning_rate"}}
        row["lr"] = lr
        row.update(self.extra)
        _append_history(self.run_dir / "history.csv", row)
        folder = self.run_dir / CHECKPOINTS
        folder.mkdir(exist_ok=True)
        _io.save_model(self.model, folder / f"epoch-{epoch:04d}.keras")
        for old in folder.glob("epoch-*.keras"):
            if old.name != f"epoch-{epoch:04d}.keras":
                old.unlink(missing_ok=True)
        value = logs.get(MONITOR, -math.inf)
        if value > self.best:
            self.best, self.best_epoch = value, epoch
            _io.save_model(self.model, self.run_dir / "model.keras")


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose wait counter and best value can be restored after a restart."""

    def __init__(self, *args, restore: tuple[int, float, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._restore = restore

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restore:
            self.wait, self.best, self.best_epoch = self._restore


class ResumableReduceLR(keras.callbacks.ReduceLROnPlateau):
    def __init__(self, *args, restore: tuple[int, float] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._restore = restore

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restore:
            self.wait, self.best = self._restore


# ---------------------------------------------------------------- runs


def _default_run_dir(config: TrainConfig, dataset_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset_name)
    base = Path(config.out) if config.out else Path("saved_models")
    run = base / f"{config.arch}-{safe}-{stamp}"
    suffix = 1
    while run.exists():
        suffix += 1
        run = base / f"{config.arch}-{safe}-{stamp}-{suffix}"
    return run


def start_run(run: Path, options: dict, data, prep, model, verbose: int) -> dict:
    """Create the run folder with config.json and labels.txt; refuse to overwrite a run."""
    if (run / "config.json").exists():
        raise UserError(f"{run} already holds a run; continue it with --resume {run}")
    run.mkdir(parents=True, exist_ok=True)
    record = {
        **options,
        "preprocessing": prep.to_dict(),
        "class_names": data.class_names,
        "num_classes": data.num_classes,
        "splits": {k: len(v) for k, v in data.splits.items()},
        "skipped_files": len(data.skipped),
        "params": int(model.count_params()),
        "versions": versions(),
        "created": datetime.now().isoformat(timespec="seconds"),
        "status": "running",
    }
    _io.write_json(run / "config.json", record)
    _io.write_text(run / "labels.txt", "\n".join(data.class_names) + "\n")
    _io.log(verbose, f"run folder: {run}")
    return record


def train(config: TrainConfig, *, run_dir: str | Path | None = None, verbose: int = 1) -> dict:
    """Train ``config.arch`` on ``config.dataset`` into a new run folder; return the summary."""
    config.validate()
    seed_everything(config.seed)
    data = load_dataset(config.dataset, seed=config.seed)
    if data.skipped:
        _io.log(1, f"skipped {len(data.skipped)} unreadable file(s), e.g. {data.skipped[0]}")
    info = model_info(config.arch)
    size = config.image_size or info.input_shape[0]
    if size < info.min_size:
        raise UserError(
            f"--image-size {size} is below {config.arch}'s minimum of {info.min_size}; "
            f"pass --image-size {info.min_size} or more"
        )
    prep = preprocessing_for(config.arch, size, data.channels)
    options = dict(config.model_options)
    if config.dropout is not None:
        options["dropout"] = config.dropout
    model = create_model(
        config.arch, input_shape=prep.input_shape, num_classes=data.num_classes, **options
    )
    compile_for_training(model, config)
    run = Path(run_dir) if run_dir else _default_run_dir(config, data.name)
    record = start_run(run, {**config.to_dict(), "image_size": size}, data, prep, model, verbose)
    return _fit(model, config, data, prep, run, record, start_epoch=0, verbose=verbose)


def resume(run_dir: str | Path, *, verbose: int = 1) -> dict:
    """Continue a run folder from its last completed epoch (after a crash or a kill)."""
    run = Path(run_dir)
    config_path = run / "config.json"
    if not config_path.is_file():
        raise UserError(f"{run} is not a run folder (no config.json); start one with train")
    record = json.loads(config_path.read_text())
    if "base" in record:
        raise UserError(f"{run} is a finetune run; those cannot be resumed yet: run it again")
    config = TrainConfig.from_dict(record)
    if record.get("status") in ("done", "early_stopped", "nan"):
        _io.log(verbose, f"{run} is complete ({record['status']}); nothing to resume")
        return record.get("result", {})
    seed_everything(config.seed)
    data = load_dataset(config.dataset, seed=config.seed)
    prep = Preprocessing.from_dict(record["preprocessing"])
    checkpoints = sorted((run / CHECKPOINTS).glob("epoch-*.keras"))
    if not checkpoints:  # killed during the first epoch: start over in the same folder
        _io.log(verbose, "no completed epoch to resume from; starting the run again")
        (run / "history.csv").unlink(missing_ok=True)
        config_path.unlink()
        return train(config, run_dir=run, verbose=verbose)
    last = checkpoints[-1]
    epoch = int(last.stem.split("-")[1])
    model = keras.saving.load_model(last, safe_mode=True)
    rows = [r for r in read_history(run / "history.csv") if r["epoch"] <= epoch]
    _write_history(run / "history.csv", rows)
    _io.log(verbose, f"resuming {run} after epoch {epoch + 1} of {config.epochs}")
    return _fit(model, config, data, prep, run, record, start_epoch=epoch + 1, verbose=verbose,
                history=rows)  # fmt: skip


def _restored_state(rows: list[dict], model: keras.Model, run: Path):
    """Best value/epoch and plateau counters, rebuilt from the history rows."""
    if not rows:
        return None
    values = [r.get(MONITOR, -math.inf) for r in rows]
    best_i = int(np.argmax(values))
    last_epoch = int(rows[-1]["epoch"])
    best_epoch = int(rows[best_i]["epoch"])
    if best_epoch == last_epoch:  # killed after the checkpoint, before the best model was saved
        _io.save_model(model, run / "model.keras")
    lr_changes = [int(r["epoch"]) for a, r in itertools.pairwise(rows) if r["lr"] < a["lr"]]
    since_lr = last_epoch - max([best_epoch, *lr_changes])
    return values[best_i], best_epoch, last_epoch - best_epoch, since_lr


def fit_epochs(
    model,
    config,
    data,
    prep,
    run,
    *,
    start_epoch,
    epochs,
    verbose,
    state=None,
    best=None,
    extra=None,
) -> RunCheckpoint:
    """``model.fit`` from ``start_epoch`` to ``epochs`` with the run's callbacks.

    ``state`` restores early stopping and plateau counters after a restart; ``best`` carries
    (value, epoch) of the best model over from an earlier phase.
    """
    checkpoint = RunCheckpoint(run, *(best or (state[:2] if state else ())), extra=extra)
    callbacks = [
        ResumableEarlyStopping(
            monitor=MONITOR, mode="max", patience=config.patience,
            restore=(state[2], state[0], state[1]) if state else None,
        ),
        ResumableReduceLR(
            monitor=MONITOR, mode="max", factor=0.5, patience=max(2, config.patience // 3),
            min_lr=config.lr / 100, restore=(state[3], state[0]) if state else None,
        ),
        keras.callbacks.TensorBoard(log_dir=str(run / "logs"), write_graph=False),
        checkpoint,  # last: it records the learning rate after any reduction
    ]  # fmt: skip
    train_ds = make_pipeline(
        data.splits["train"], prep, data.num_classes, batch_size=config.batch_size,
        training=True, augment=config.augment, seed=config.seed,
    )  # fmt: skip
    val_ds = make_pipeline(data.splits["val"], prep, data.num_classes, batch_size=256)
    if start_epoch < epochs:
        model.fit(
            train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=start_epoch,
            callbacks=callbacks, verbose=2 if verbose else 0, shuffle=False,
        )  # fmt: skip
    if checkpoint.nan_epoch is not None:
        _io.log(1, f"loss became NaN at epoch {checkpoint.nan_epoch + 1}; stopped and kept the "
                f"best model (epoch {checkpoint.best_epoch + 1}); try a lower --lr")  # fmt: skip
    return checkpoint


def finish_run(run, data, prep, record, *, status, seconds, title, verbose) -> dict:
    """Training curves, the test-split report of the best model, and the final config.json."""
    rows = read_history(run / "history.csv")
    if not (run / "model.keras").is_file():
        raise UserError(f"training stopped before any epoch completed ({status}); try a lower --lr")
    history = {k: [r[k] for r in rows] for k in (rows[0] if rows else {})}
    _io.write_bytes(run / "training_curves.png", training_curves_png(history))
    best = keras.saving.load_model(run / "model.keras", safe_mode=True)
    scores, images = predict_split(best, data.splits["test"], prep, data.num_classes)
    metrics = write_report(
        run, data.splits["test"].labels, scores, data.class_names, images=images, title=title
    )
    result = {
        "run_dir": str(run),
        "status": status,
        "epochs_run": len(rows),
        "best_epoch": int(np.argmax([r[MONITOR] for r in rows])) + 1 if rows else 0,
        "val_accuracy": max((r[MONITOR] for r in rows), default=0.0),
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["f1"]["macro"],
        "test_mAP": metrics["mAP"],
        "fit_seconds": round(seconds, 2),
    }
    record.update(status=status, result=result)
    _io.write_json(run / "config.json", record)
    for leftover in (run / CHECKPOINTS).glob("*.keras"):
        leftover.unlink()
    if (run / CHECKPOINTS).is_dir():
        (run / CHECKPOINTS).rmdir()
    _io.log(verbose, f"test accuracy {result['test_accuracy']:.4f} (macro F1 "
                  f"{result['test_macro_f1']:.4f}, mAP {result['test_mAP']:.4f}); "
                  f"report: {run / 'report.html'}")  # fmt: skip
    return result


def _fit(model, config, data, prep, run, record, *, start_epoch, verbose, history=None) -> dict:
    state = _restored_state(history or [], model, run)
    started = time.perf_counter()
    checkpoint = fit_epochs(
        model, config, data, prep, run, start_epoch=start_epoch, epochs=config.epochs,
        verbose=verbose, state=state,
    )  # fmt: skip
    rows = read_history(run / "history.csv")
    if checkpoint.nan_epoch is not None:
        status = "nan"
    elif len(rows) < config.epochs:
        status = "early_stopped"
    else:
        status = "done"
    return finish_run(
        run, data, prep, record, status=status, seconds=time.perf_counter() - started,
        title=f"{config.arch} on {config.dataset}: test split", verbose=verbose,
    )  # fmt: skip
