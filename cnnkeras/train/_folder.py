"""A run folder: claimed under a unique name, started with the record, the split and the
labels (``start_run``), and the ``Run`` that trains into it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import keras

from cnnkeras import _io
from cnnkeras._files import BATCH_FILE, CONFIG_FILE, HISTORY_FILE, LABELS_FILE, SPLITS_FILE
from cnnkeras.data import ImageDataset, Preprocessing, check_dataset, write_check
from cnnkeras.errors import UserError
from cnnkeras.saved import model_record
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import replicas
from cnnkeras.train._plan import TrainingPlan
from cnnkeras.train._setup import first_batch_png, versions


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


def report_title(config: TrainConfig) -> str:
    return f"{config.arch} on {config.dataset}: test split"
