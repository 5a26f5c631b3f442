"""The one config object of a training run; it is what config.json records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from cnnkeras.data import DEFAULT_SEED
from cnnkeras.data._pipeline import DEFAULT_AUGMENT
from cnnkeras.errors import UserError

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("crossentropy", "mse")


@dataclass
class TrainConfig:
    """Defaults are the README's main job: LeNet-5 on the embedded MNIST sample."""

    arch: str = "lenet5"
    dataset: str = "mnist5k"
    epochs: int = 60
    batch_size: int = 64
    image_size: int | None = None  # None: the architecture's canonical input size
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    loss: str = "crossentropy"
    label_smoothing: float = 0.0
    dropout: float | None = None  # None: the architecture's default
    augment: tuple[str, ...] = DEFAULT_AUGMENT
    seed: int = DEFAULT_SEED
    patience: int = 15  # early stopping: epochs without a better validation accuracy
    model_options: dict = field(default_factory=dict)
    out: str | None = None

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.image_size is None or self.image_size >= 1, "--image-size must be >= 1"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}"),
            (self.lr > 0, "--lr must be > 0"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (self.patience >= 1, "--patience must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = list(self.augment)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["augment"] = tuple(values.get("augment", ()))
        return cls(**values)
