"""The learning-rate range test (Smith 2015, fastai's ``lr_find``): train for a few hundred
steps while the learning rate grows exponentially, record the loss of each step, restore the
weights, and suggest a rate from the curve.

The suggestion is Smith's rule, the rate where the smoothed loss falls fastest (per unit of
log rate), taken before the loss's minimum so that a bump past the minimum cannot win.
fastai's "valley" (its default since 2.5) and "minimum / 10" are reported beside it.
BENCHMARKS.md ("lr-find against a grid") chose the rule and the 400 steps on LeNet-5 and
MobileNet v2: against the best of six 5-epoch runs, the steepest descent was within a factor
of 2 for both (minimum / 10 within 2.0x, valley 4-5x too low); at 200 steps a batch-norm
network has barely begun to learn when the rate gets large, and no rule was close."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from cnnkeras import _io
from cnnkeras._files import LR_FIND_FILE
from cnnkeras.errors import UserError
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import single_process
from cnnkeras.train._fitdata import fit_pipelines
from cnnkeras.train._optim import compile_for_training
from cnnkeras.train._setup import prepare

START_LR, END_LR = 1e-7, 10.0
LR_FIND_STEPS = 400
SMOOTHING = 0.98  # exponential smoothing of the loss (fastai's beta)
DIVERGE = 4.0  # stop once the smoothed loss exceeds this many times its minimum


@dataclass
class LRFinding:
    """The range test's curve and what it suggests."""

    lrs: list[float]
    losses: list[float]  # smoothed, one per step
    raw_losses: list[float]  # each step's own loss
    suggestion: float
    rule: str
    others: dict[str, float]  # what the other rules would suggest
    diverged_at: float | None  # the learning rate where the loss blew up; None: it never did

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def text(self) -> str:
        others = ", ".join(f"{rule} {lr:.2g}" for rule, lr in self.others.items())
        blew = (
            f"; the loss diverged at {self.diverged_at:.2g}"
            if self.diverged_at
            else f"; no divergence up to {self.lrs[-1]:.2g}"
        )
        return (
            f"suggested learning rate {self.suggestion:.2g} ({self.rule} rule: where the "
            f"loss falls fastest, before its minimum); other rules: {others}{blew}; "
            f"{len(self.lrs)} steps"
        )


class _Sweep(keras.callbacks.Callback):
    """Sets the learning rate of each step and records the step's own loss."""

    def __init__(self, lrs: np.ndarray):
        super().__init__()
        self.lrs = lrs
        self.raw: list[float] = []
        self.smoothed: list[float] = []
        self._mean = 0.0
        self._avg = 0.0
        self.diverged = False

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = float(self.lrs[batch])

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])  # Keras logs the epoch's running mean: undo it
        loss = (batch + 1) * mean - batch * self._mean
        self._mean = mean
        if not math.isfinite(loss):
            self.diverged = True
            self.model.stop_training = True
            return
        self._avg = SMOOTHING * self._avg + (1 - SMOOTHING) * loss
        smooth = self._avg / (1 - SMOOTHING ** (batch + 1))  # bias-corrected, as fastai
        self.raw.append(loss)
        self.smoothed.append(smooth)
        if smooth > DIVERGE * min(self.smoothed):
            self.diverged = True
            self.model.stop_training = True


def valley(losses: list[float]) -> int:
    """fastai's valley rule: the index a little past the start of the longest run over which
    the loss keeps decreasing (a longest decreasing subsequence, O(n^2) for a few hundred
    points)."""
    n = len(losses)
    run = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end = i
            start = end - run[end]
    third = (end - start) / 3
    return min(n - 1, max(0, start + int(third) + int(third / 2)))


def suggest(lrs: list[float], losses: list[float]) -> tuple[float, dict[str, float]]:
    """The steepest-descent rate (before the minimum) and those of the valley rule and of
    the minimum / 10, on the curve without its first tenth and last five points (fastai's
    trimming)."""
    lo, hi = len(lrs) // 10, max(len(lrs) // 10 + 2, len(lrs) - 5)
    lrs_, losses_ = np.asarray(lrs[lo:hi]), np.asarray(losses[lo:hi])
    low = int(np.argmin(losses_))
    slopes = np.gradient(losses_, np.log(lrs_))
    steepest = int(np.argmin(slopes[: low + 1]))
    others = {
        "valley": float(lrs_[valley(list(losses_))]),
        "minimum/10": float(lrs_[low] / 10),
    }
    return float(lrs_[steepest]), others


def check_range(steps: int, start_lr: float = START_LR, end_lr: float = END_LR) -> None:
    if steps < 10:
        raise UserError(f"`steps` must be >= 10, got {steps}")
    if not 0 < start_lr < end_lr:
        raise UserError(f"need 0 < `start_lr` < `end_lr`, got {start_lr} and {end_lr}")


def lr_range_test(
    model: keras.Model,
    config,
    plan,
    data,
    prep,
    *,
    steps: int = LR_FIND_STEPS,
    start_lr: float = START_LR,
    end_lr: float = END_LR,
    verbose: int = 1,
) -> LRFinding:
    """Run the range test on ``model`` with the run's optimizer, loss, batches and
    augmentation; the model's weights are as before afterwards (it must be compiled again)."""
    check_range(steps, start_lr, end_lr)
    weights = model.get_weights()
    swept = dataclasses.replace(config, lr=start_lr, schedule="constant", ema=None)
    compile_for_training(model, swept, None, steps_per_execution=1)
    fit_data = fit_pipelines(
        model,
        data,
        prep,
        plan,
        seed=config.seed,
        augment=plan.augment,
        cache_dir=None,
    )
    lrs = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    sweep = _Sweep(lrs)
    _io.log(verbose, f"learning-rate range test: {steps} steps from {start_lr:g} to {end_lr:g}")
    model.fit(
        fit_data.train,
        steps_per_epoch=steps,
        epochs=1,
        callbacks=[sweep],
        class_weight=fit_data.class_weight,
        verbose=0,
        shuffle=False,
    )
    model.set_weights(weights)
    n = len(sweep.smoothed)
    if n < 20:
        raise UserError(
            f"the loss diverged after {n} of {steps} steps, at a learning rate of "
            f"{lrs[n]:.2g}; pass a lower `start_lr`"
        )
    found = [float(x) for x in lrs[:n]]
    suggestion, others = suggest(found, sweep.smoothed)
    return LRFinding(
        lrs=found,
        losses=[float(x) for x in sweep.smoothed],
        raw_losses=[float(x) for x in sweep.raw],
        suggestion=suggestion,
        rule="steepest",
        others=others,
        diverged_at=float(lrs[n]) if sweep.diverged and n < steps else None,
    )


def lr_find_png(found: LRFinding, title: str = "") -> bytes:
    from cnnkeras._figures import plt, png_bytes

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(found.lrs, found.losses, color="#1f77b4", label="loss (smoothed)")
    ax.axvline(found.suggestion, color="#d62728", label=f"{found.rule}: {found.suggestion:.2g}")
    for (rule, lr), style in zip(found.others.items(), (":", "-."), strict=False):
        ax.axvline(lr, color="#7f7f7f", linestyle=style, label=f"{rule}: {lr:.2g}")
    if found.diverged_at:
        ax.axvline(found.diverged_at, color="black", linestyle="--", label="diverged")
    low, high = min(found.losses), found.losses[len(found.losses) // 10]
    ax.set_ylim(low - 0.1 * abs(high - low), max(high, low) * 1.5 + 1e-3)
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title=title)
    ax.legend(fontsize=8)
    return png_bytes(fig)


def lr_find(
    config: TrainConfig,
    *,
    steps: int = LR_FIND_STEPS,
    plot: str | Path | None = None,
    verbose: int = 1,
) -> LRFinding:
    """The learning-rate range test of ``config``'s model, data and recipe (its ``lr`` is
    ignored); with ``plot``, the loss against the learning rate as a PNG there."""
    check_range(steps)
    single_process(config.distribute, "lr-find")
    _, data, prep, model, plan = prepare(config, verbose)
    config = dataclasses.replace(config, lr=START_LR)
    found = lr_range_test(model, config, plan, data, prep, steps=steps, verbose=verbose)
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
    found = lr_range_test(model, config, plan, data, prep, verbose=verbose)
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
            "plot": LR_FIND_FILE,
        }
    }
