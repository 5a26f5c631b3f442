"""Experiment definitions: one TOML file each in tuning/, or the same fields from the CLI."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from cnnkeras._options import check_choices, option
from cnnkeras.data import DEFAULT_SEED
from cnnkeras.errors import UserError
from cnnkeras.train import Recipe, TrainConfig

TUNERS = ("random", "hyperband", "bayesian")
# sampled by the hypermodel (training options), not passed to the builder
TRAINING_HPS = (
    "lr",
    "optimizer",
    "momentum",
    "batch_size",
    "schedule",
    "warmup_epochs",
    "weight_decay",
    "label_smoothing",
    "mixup",
    "cutmix",
    "ema",
)
# what a trial's fit records (train compiles loss and accuracy), and which way is better
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "accuracy": "max", "loss": "min"}
MEMORY_GROWTH_MB = 128.0  # a search process hands over to a fresh one after growing this much
_LR = {"min": 1e-4, "max": 1e-2, "sampling": "log"}
_DROPOUT = {"min": 0.0, "max": 0.5, "step": 0.1}

# Default search space per family: kernel size, filters (or width) and dropout where the
# family's builder has them, plus the learning rate.
SEARCH_SPACES = {
    "lenet": {
        "kernel_size": {"values": [3, 5]},
        "filters": {"values": [6, 12, 24]},
        "dropout": _DROPOUT,
        "lr": _LR,
    },
    "vgg": {
        "kernel_size": {"values": [3, 5]},
        "filters": {"values": [8, 16, 32]},
        "dropout": _DROPOUT,
        "lr": _LR,
    },
    "alexnet": {"dropout": _DROPOUT, "lr": _LR},
    "googlenet": {"dropout": _DROPOUT, "lr": _LR},
    "resnet": {"dropout": _DROPOUT, "lr": _LR},
    "mobilenet": {"alpha": {"values": [0.35, 0.5, 0.75, 1.0]}, "dropout": _DROPOUT, "lr": _LR},
    "efficientnet": {"dropout": _DROPOUT, "lr": _LR},
}


@dataclass
class Experiment(Recipe):
    """What to search, on what, how long, and where the results go; how each trial trains is
    a ``Recipe``, as ``cnnkeras train``'s (its searchable options: TRAINING_HPS). The help
    texts are the command line's (``cnnkeras tune --help``); an experiment file sets the same
    fields."""

    name: str = option(
        "",
        help="the experiment's name, its results folder's (default: the experiment file's name, or "
        "ARCH_DATASET)",
    )
    arch: str = option("lenet5", help="the architecture whose options are searched")
    dataset: str = option(
        "digits", help="what trials train on: as train's --dataset", metavar="SPEC"
    )
    tuner: str = option("random", help="the Keras Tuner oracle", choices=TUNERS)
    max_trials: int = option(10, help="configurations to try")
    epochs: int = option(5, help="epochs of each trial (hyperband: the most of any trial)")
    objective: str = option(
        "val_accuracy", help="what trials are ranked by", choices=tuple(OBJECTIVES)
    )
    seed: int = option(DEFAULT_SEED, help="seed of the split, the tuner and the weights")
    directory: str | None = option(
        None,
        help="where results go (default: tuning/runs/<name>/)",
        flags=("--dir",),
        metavar="DIR",
    )
    search_space: dict = field(default_factory=dict)  # empty: the family's default
    retry_failed: int = option(1, help="extra attempts of a failed trial before it is FAILED")

    def __post_init__(self):
        if not self.name:
            safe = self.dataset.split(":")[-1].rstrip("/").split("/")[-1]
            self.name = f"{self.arch}_{safe}"
        if self.objective not in OBJECTIVES:
            raise UserError(
                f"`objective` must be one of {', '.join(OBJECTIVES)} (what trials record), "
                f"got {self.objective!r}"
            )
        check_choices(self)
        if self.precision == "auto":  # its probe would time each trial, not train it
            raise UserError("`precision` auto is train's only; pass float32, bfloat16 or float16")
        if self.max_trials < 1 or self.epochs < 1:
            raise UserError("`max_trials` and `epochs` must be >= 1")
        if self.batch_size != "auto" and not (
            isinstance(self.batch_size, int) and self.batch_size >= 1
        ):
            raise UserError(f"`batch_size` must be auto or >= 1, got {self.batch_size!r}")

    @property
    def direction(self) -> str:
        """'max' or 'min': which way the objective is better (as ``kt.Objective`` takes it)."""
        return OBJECTIVES[self.objective]

    @property
    def maximize(self) -> bool:
        return self.direction == "max"

    @property
    def out(self) -> Path:
        return Path(self.directory) if self.directory else Path("tuning/runs") / self.name

    def space(self, family: str) -> dict:
        return self.search_space or SEARCH_SPACES[family]

    def train_config(self, sampled: dict | None = None, **fixed) -> TrainConfig:
        """The ``cnnkeras train`` config of a trial or a retrain: the experiment's recipe,
        architecture, data and seed, the sampled training
        hyperparameters over them, then ``fixed`` (epochs, seed, builder options)."""
        shared = [f.name for f in fields(Recipe)] + ["arch", "dataset", "seed"]
        values = {name: getattr(self, name) for name in shared}
        picked = {k: v for k, v in (sampled or {}).items() if k in TRAINING_HPS}
        return TrainConfig.from_dict({**values, **picked, **fixed})


def load_experiment(path: str | Path, **overrides) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"experiment file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path} is not valid TOML: {err}") from None
    known = {f.name for f in fields(Experiment)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown field(s) {', '.join(unknown)}")
    data.setdefault("name", path.stem)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return Experiment(**data)
