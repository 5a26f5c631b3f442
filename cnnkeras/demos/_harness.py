"""What every block demo shares: the data (mnist5k at 28x28), one way to train a variant
(``fit``), its seeds (``measure``), the table's cells, the curves plot and the result.

Every variant of a demo trains with the same optimizer, rate, batches and epochs from the
same seeds; batch norm is evaluated as ``cnnkeras train`` evaluates it (statistics
recomputed for the weights before each validation)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from cnnkeras import _doc
from cnnkeras._keras_internals import build_training_state
from cnnkeras.data import DEFAULT_SEED, load_dataset
from cnnkeras.demos._registry import DEMOS
from cnnkeras.errors import UserError
from cnnkeras.train import PreciseBatchNorm, refuse_wrong_gradients, seed_everything

BATCH = 64


@dataclass
class Data:
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_digits_28(train_images: int | None = None) -> Data:
    """mnist5k's training split (a stratified random ``train_images`` of it) and its
    validation split, scaled to 0..1."""
    from sklearn.model_selection import train_test_split

    data = load_dataset("mnist5k", seed=DEFAULT_SEED, verbose=0)
    train, val = data.splits["train"], data.splits["val"]
    n = len(train) if train_images is None else train_images
    if not 10 <= n <= len(train):
        raise UserError(f"`train_images` must be in 10..{len(train)}")
    if n < len(train):  # the split's order is by class: take every class alike
        keep, _ = train_test_split(
            np.arange(len(train)), train_size=n, stratify=train.labels, random_state=DEFAULT_SEED
        )
        train = train.subset(np.sort(keep))
    scale = np.float32(1 / 255)
    return Data(train.images * scale, train.labels, val.images * scale, val.labels)


@dataclass
class Curves:
    """Per-epoch training and validation accuracy of one run."""

    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    build: Callable[[], keras.Model],
    data: Data,
    *,
    epochs: int,
    lr: float,
    seed: int,
    optimizer: str = "adam",
) -> tuple[keras.Model, Curves]:
    """Seed, build, and train at a constant ``lr`` with Adam (or SGD with momentum 0.9), the
    same for every variant of a demo; the model and its curves."""
    seed_everything(seed)
    model = build()
    refuse_wrong_gradients(model)
    model.compile(
        optimizer=(
            keras.optimizers.Adam(lr)
            if optimizer == "adam"
            else keras.optimizers.SGD(lr, momentum=0.9)
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    build_training_state(model, data.y[:1])
    # batch norm is evaluated as `cnnkeras train` evaluates it: statistics recomputed for the
    # weights before each validation (the moving averages lag far behind in short runs)
    clean = tf.data.Dataset.from_tensor_slices((data.x, data.y)).batch(BATCH)
    started = time.perf_counter()
    history = model.fit(
        data.x,
        data.y,
        batch_size=BATCH,
        epochs=epochs,
        validation_data=(data.x_val, data.y_val),
        callbacks=[PreciseBatchNorm(clean)],
        verbose=0,
    ).history
    curves = Curves(
        [float(v) for v in history["accuracy"]],
        [float(v) if np.isfinite(v) else 0.0 for v in history["val_accuracy"]],
        time.perf_counter() - started,
    )
    return model, curves


def measure(
    variants: dict[str, Callable[[], keras.Model]],
    seeds: Sequence[int],
    data: Data,
    **training,
) -> dict[str, list[Curves]]:
    """Each variant trained from each seed with the same ``training`` (``fit``'s epochs, lr,
    optimizer): its curves, by variant name."""
    return {
        name: [fit(build, data, seed=s, **training)[1] for s in seeds]
        for name, build in variants.items()
    }


def pm(values: Sequence[float], fmt: str = ".3f") -> str:
    """Repeated runs as a cell: the mean, +- the spread."""
    return _doc.spread_cell(*_doc.spread(values), len(values), fmt)


def last(runs: Sequence[Curves], metric: str = "val_accuracy") -> tuple[str, float]:
    """The runs' final ``metric``: as a cell, and its mean (what verdicts compare)."""
    finals = [getattr(c, metric)[-1] for c in runs]
    return pm(finals), statistics.mean(finals)


def curves_png(panels: dict[str, dict[str, list[Curves]]], title: str) -> bytes:
    """One panel per metric name; one line per variant (mean over seeds, band: min..max)."""
    from cnnkeras._figures import plt, png_bytes

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (metric, variants) in zip(axes[0], panels.items(), strict=True):
        for i, (name, runs) in enumerate(variants.items()):
            values = np.array([getattr(c, metric) for c in runs])
            epochs = np.arange(1, values.shape[1] + 1)
            ax.plot(epochs, values.mean(0), color=f"C{i}", label=name)
            if len(runs) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=f"C{i}", alpha=0.15)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def result(
    name: str, columns, rows, held, verdict: str, png: bytes, *, claim: str = "", **extra
) -> dict:
    """A demo's result: its declared claim (or ``claim``), the table (row keys starting with
    _, what the verdict was computed from, go), whether the claim held, why, the plot."""
    return {
        "demo": name,
        "claim": claim or DEMOS[name].claim,
        "columns": list(columns),
        "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "held": bool(held),
        "verdict": verdict,
        "png": png,
        **extra,
    }


def check(seeds: Sequence[int], **positive: int) -> None:
    if not seeds:
        raise UserError("`seeds` must hold at least one seed")
    for name, value in positive.items():
        if value < 1:
            raise UserError(f"`{name}` must be >= 1")
