"""Whether a run learned anything. Its best validation accuracy is set against guessing (always
the largest class of the validation split, or chance where the classes are even), with the noise
of a validation split that small; a run within that noise gets a plain warning with the likely
causes measured from the run itself and what to try, instead of a report like any other."""

from __future__ import annotations

import math

import numpy as np

from cnnkeras.train._callbacks import MONITOR
from cnnkeras.train._plan import MIN_TOTAL_STEPS, TrainingPlan

SIGMAS = 2.0  # a guesser beats its own rate by this many standard errors about 1 time in 40
LOSS_FELL = 0.9  # a training loss that never went below 90% of its first epoch's never fell


def learned_nothing(
    rows: list[dict], val_labels: np.ndarray, num_classes: int, plan: TrainingPlan
) -> dict | None:
    """None for a run whose best validation accuracy is clear of guessing; else what the run
    got, what guessing gets, the causes seen in the run and the advice."""
    if not rows or len(val_labels) == 0:
        return None
    counts = np.bincount(val_labels, minlength=num_classes)
    guess = max(1.0 / num_classes, counts.max() / counts.sum())
    margin = SIGMAS * math.sqrt(guess * (1 - guess) / counts.sum())
    best = max(float(row[MONITOR]) for row in rows)
    if best > guess + margin:
        return None
    causes, advice = [], []
    steps = len(rows) * plan.steps_per_epoch
    if steps < MIN_TOTAL_STEPS:
        causes.append(f"{steps} optimizer steps, where `--epochs auto` plans {MIN_TOTAL_STEPS:,}")
        advice.append("train longer (`--epochs auto`)")
    losses = [float(row["loss"]) for row in rows]
    if min(losses) > LOSS_FELL * losses[0]:
        causes.append(f"a training loss that never fell ({losses[0]:.3f} -> {min(losses):.3f})")
        advice.append("find a learning rate with `cnnkeras lr-find`")
    if counts.sum() < 10 * num_classes:
        causes.append(f"{counts.sum()} validation images, too few to tell much")
        advice.append("add images")
    advice = advice or ["check the labels", "find a learning rate with `cnnkeras lr-find`"]
    message = (
        f"this run learned nothing that validation can tell: best validation accuracy "
        f"{best:.3f} is within noise of guessing ({guess:.3f} + {margin:.3f}); "
        + (f"seen: {'; '.join(causes)}; " if causes else "")
        + f"try: {', '.join(advice)}"
    )
    return {
        "best_val_accuracy": best,
        "guessing": guess,
        "margin": margin,
        "causes": causes,
        "advice": advice,
        "message": message,
    }
