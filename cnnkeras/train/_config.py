"""The one config object of a training run; it is what config.json records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from cnnkeras.data import DEFAULT_SEED
from cnnkeras.data._pipeline import CACHE_BUDGET_MB, CACHES
from cnnkeras.errors import UserError
from cnnkeras.train._plan import SCHEDULES

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("crossentropy", "mse")


@dataclass
class TrainConfig:
    """Defaults are the README's main job: LeNet-5 on the embedded MNIST sample."""

    arch: str = "lenet5"
    dataset: str = "mnist5k"
    epochs: int | str = "auto"  # auto: 60, or more where an epoch has few steps
    batch_size: int | str = "auto"  # "auto": 64, 32 or 16, whichever gives >= 50 steps
    image_size: int | None = None  # None: the architecture's canonical input size
    optimizer: str = "adam"
    lr: float = 1e-3  # the peak of a schedule
    schedule: str = "cosine"
    warmup_epochs: int | None = None  # None: min(3, epochs // 10)
    momentum: float = 0.9
    loss: str = "crossentropy"
    label_smoothing: float = 0.0
    dropout: float | None = None  # None: the architecture's default
    augment: tuple[str, ...] | str = "auto"  # auto: rotation, zoom, translation; + flip for colour
    seed: int = DEFAULT_SEED
    patience: int = 15  # early stopping: epochs without a better validation accuracy
    cache: str = "auto"
    cache_budget_mb: float = CACHE_BUDGET_MB
    model_options: dict = field(default_factory=dict)
    out: str | None = None

    def validate(self) -> None:
        def auto_or_positive(value) -> bool:
            return value == "auto" or (isinstance(value, int) and value >= 1)

        checks = [
            (auto_or_positive(self.epochs), "`epochs` must be auto or >= 1"),
            (auto_or_positive(self.batch_size), "`batch_size` must be auto or >= 1"),
            (self.image_size is None or self.image_size >= 1, "`image_size` must be >= 1"),
            (self.optimizer in OPTIMIZERS, f"`optimizer` must be one of {', '.join(OPTIMIZERS)}"),
            (self.loss in LOSSES, f"`loss` must be one of {', '.join(LOSSES)}"),
            (self.lr > 0, "`lr` must be > 0"),
            (0 <= self.label_smoothing < 1, "`label_smoothing` must be in [0, 1)"),
            (self.patience >= 1, "`patience` must be >= 1"),
            (self.schedule in SCHEDULES, f"`schedule` must be one of {', '.join(SCHEDULES)}"),
            (self.warmup_epochs is None or self.warmup_epochs >= 0, "`warmup_epochs` must be >= 0"),
            (self.cache in CACHES, f"`cache` must be one of {', '.join(CACHES)}"),
            (self.cache_budget_mb >= 0, "`cache_budget_mb` must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

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
