"""The one config object of a training run; it is what config.json records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from cnnkeras._options import check_choices, option
from cnnkeras.data import (
    AUGMENTATIONS,
    CACHE_BUDGET_MB,
    CACHES,
    DEFAULT_AUGMENT,
    DEFAULT_SEED,
    MIX_STRENGTHS,
    RESIZES,
    check_augmentations,
)
from cnnkeras.errors import UserError
from cnnkeras.train._distribute import DISTRIBUTE
from cnnkeras.train._plan import SCHEDULES
from cnnkeras.train._precision import PRECISIONS

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("crossentropy", "mse")
SCORES = ("calibrated", "raw")  # temperature scaling at the end of a run (train._calibrate)


def _number(value) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else -1.0


@dataclass
class Recipe:
    """How a network trains, whatever starts it: the options a run (``TrainConfig``), a
    fine-tuning (``FinetuneConfig``) and a search's trials (``cnnkeras.tuning.Experiment``)
    share, each declared once here with its help and choices."""

    image_size: int | None = option(
        None,
        help="images are resized to N x N pixels (default: the architecture's input)",
        metavar="N",
    )
    batch_size: int | str = option(
        "auto",
        help="images a step; auto: 64, 32 or 16, the largest that gives 50 steps an epoch",
        metavar="auto|N",
    )
    schedule: str = option(
        "cosine",
        help="learning rate: cosine decay after a linear warm-up, onecycle, plateau (halve "
        "when validation stalls) or constant",
        choices=SCHEDULES,
    )
    warmup_epochs: int | None = option(
        None,
        help="epochs of linear warm-up before the schedule (default: min(3, epochs / 10))",
        metavar="N",
    )
    weight_decay: float = option(
        0.0, help="decoupled weight decay (AdamW with adam); 0: none", metavar="WD"
    )
    label_smoothing: float = option(
        0.0,
        help="label smoothing of the crossentropy loss (0.1: targets of 0.9 and 0.1/K)",
        metavar="EPS",
    )
    class_weight: str = option(
        "none",
        help="loss weight per class: balanced (n / (K n_c)), none, or a JSON file of weights "
        "by class name",
        metavar="balanced|none|FILE",
    )
    augment: tuple[str, ...] | str = option(
        "auto",
        help=f"comma list of {','.join(AUGMENTATIONS)}; auto (alone or in the list): "
        f"{','.join(DEFAULT_AUGMENT)}, and flip for colour images",
        metavar="LIST",
        off="--no-augment",
        off_help="train without augmentation",
    )
    mixup: float | None = option(
        None,
        help=f"MixUp's alpha; > 0 adds mixup to the augmentation, 0 removes it "
        f"(default: {MIX_STRENGTHS['mixup']} when listed)",
        metavar="ALPHA",
    )
    cutmix: float | None = option(
        None,
        help=f"CutMix's alpha, as --mixup (default: {MIX_STRENGTHS['cutmix']} when listed)",
        metavar="ALPHA",
    )
    ema: float | None = option(
        None,
        help="keep an exponential moving average of the weights with this decay (e.g. "
        "0.999) and evaluate and save it",
        metavar="DECAY",
    )
    cache: str = option(
        "auto",
        help="decoded images: in memory, in a disk file in the run folder, none, or auto "
        "(memory when they fit the cache budget)",
        choices=CACHES,
    )
    model_options: dict = option(
        help="a model builder option, e.g. --set activation=relu",
        flags=("--set",),
        metavar="KEY=VALUE",
        default_factory=dict,
    )
    precision: str = option(
        "float32",
        help="what the model computes in: bfloat16 (mixed, float32 weights: several times "
        "faster on CPUs with AMX or AVX512-BF16), float16 (GPUs), float32, or auto (bfloat16 "
        "where the CPU has it and a probe of a few steps shows it faster for this model); the "
        "saved model.keras computes in float32",
        choices=PRECISIONS,
    )
    distribute: str = option(
        "none",
        help="mirrored: data-parallel over this machine's GPUs (or --devices), the batch size "
        "being the global batch and batch norm synchronised across them; multi-host: over "
        "processes and machines on JAX (start it with `cnnkeras launch`)",
        choices=DISTRIBUTE,
    )
    devices: str | None = option(
        None,
        help="with --distribute mirrored: gpu:0,gpu:1 (default: every GPU), or cpu:N to split "
        "the CPU into N logical devices to try it",
        metavar="LIST",
    )


@dataclass
class TrainConfig(Recipe):
    """Defaults are the README's main job: LeNet-5 on the embedded MNIST sample. The help
    texts are the command line's (``cnnkeras train --help``)."""

    arch: str = option(
        "lenet5", help="the architecture: a registered model name (`cnnkeras models` lists them)"
    )
    dataset: str = option(
        "mnist5k",
        help="what to train on: digits, mnist5k, tfds:NAME, csv:FILE (path,label[,split]) or "
        "folder:PATH (one sub-folder per class, or train/ val/ test/ each with one)",
        metavar="SPEC",
    )
    epochs: int | str = option(
        "auto",
        help="epochs to train; auto: 60, or enough for 1,500 steps when epochs are short",
        metavar="auto|N",
    )
    resize: str = option(
        "phone",
        help="how images are resized to image_size: phone (as MediaPipe Tasks does in apps: "
        "bilinear at pixel corners, so training sees what the phone gives) or antialias",
        choices=RESIZES,
    )
    optimizer: str = option(
        "adam", help="the optimizer that updates the weights", choices=OPTIMIZERS
    )
    lr: float | str = option(
        1e-3,
        help="the peak of the learning-rate schedule, or auto: what `cnnkeras lr-find` "
        "suggests (run first, recorded in config.json)",
        metavar="LR|auto",
    )
    momentum: float = option(0.9, help="the momentum of sgd and rmsprop", metavar="M")
    loss: str = option("crossentropy", help="the loss the optimizer minimises", choices=LOSSES)
    dropout: float | None = option(
        None,
        help="dropout rate before the classifier (default: the architecture's)",
        metavar="RATE",
    )
    scores: str = option(
        "calibrated",
        help="calibrated: the logits divided by the temperature that fits the validation split "
        "(folded into the saved model, so a score of 0.9 is right about 90%% of the time); "
        "raw: as training left them",
        choices=SCORES,
    )
    target_accuracy: float | None = option(
        None,
        help="find the top-score threshold at which the validation images kept reach this "
        "accuracy (e.g. 0.99); predict --threshold auto and exported apps answer unknown "
        "below it",
        metavar="ACC",
    )
    seed: int = option(DEFAULT_SEED, help="seed of the split, the weights and the augmentation")
    patience: int = option(
        15, help="early stopping: stop after this many epochs without a better val_accuracy"
    )
    cache_budget_mb: float = option(
        CACHE_BUDGET_MB,
        help="memory for decoded images before --cache auto stops caching, in MiB",
        flags=("--cache-budget",),
        metavar="MIB",
    )
    out: str | None = option(
        None, help="parent of the run folder (default: saved_models)", metavar="DIR"
    )
    # internal (no flag): `compare --budget-minutes` gives each run this much fit time, and
    # the reserve its probe measured for the first validation (TimeBudget's first_tail)
    budget_seconds: float | None = None
    budget_reserve_seconds: float = 0.0

    def validate(self) -> None:
        def auto_or_positive(value) -> bool:
            return value == "auto" or (isinstance(value, int) and value >= 1)

        checks = [
            (auto_or_positive(self.epochs), "`epochs` must be auto or >= 1"),
            (auto_or_positive(self.batch_size), "`batch_size` must be auto or >= 1"),
            (self.image_size is None or self.image_size >= 1, "`image_size` must be >= 1"),
            (self.lr == "auto" or _number(self.lr) > 0, "`lr` must be auto or > 0"),
            (self.mixup is None or self.mixup >= 0, "`mixup` must be >= 0"),
            (self.cutmix is None or self.cutmix >= 0, "`cutmix` must be >= 0"),
            (self.ema is None or 0 < self.ema < 1, "`ema` must be in (0, 1), e.g. 0.999"),
            (self.weight_decay >= 0, "`weight_decay` must be >= 0"),
            (0 <= self.label_smoothing < 1, "`label_smoothing` must be in [0, 1)"),
            (self.patience >= 1, "`patience` must be >= 1"),
            (
                self.target_accuracy is None or 0 < self.target_accuracy <= 1,
                "`target_accuracy` must be in (0, 1], e.g. 0.99",
            ),
            (self.warmup_epochs is None or self.warmup_epochs >= 0, "`warmup_epochs` must be >= 0"),
            (self.cache_budget_mb >= 0, "`cache_budget_mb` must be >= 0"),
            (
                self.budget_seconds is None or self.budget_seconds > 0,
                "`budget_seconds` must be > 0",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        if self.augment != "auto":
            check_augmentations([k for k in self.augment if k != "auto"])
        check_choices(self)

    def builder_options(self) -> dict:
        """The keyword options of the model builder: ``model_options`` and ``dropout``."""
        options = dict(self.model_options)
        if self.dropout is not None:
            options["dropout"] = self.dropout
        return options

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = self.augment if self.augment == "auto" else list(self.augment)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        augment = values.get("augment", ())
        values["augment"] = augment if augment == "auto" else tuple(augment)
        return cls(**values)

    @classmethod
    def from_record(cls, record: dict) -> TrainConfig:
        """The options of a run from its config.json: a run recorded before the phone's resize
        or calibrated scores were the default keeps the resize and scores it trained with."""
        return cls.from_dict({"resize": "antialias", "scores": "raw", **record})
