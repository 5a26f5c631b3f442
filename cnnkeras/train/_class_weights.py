"""Imbalanced training data: class weights for the loss, and a warning when they are needed.

``balanced`` weighs class c by n / (K n_c), scikit-learn's rule: every class then carries the
same total weight in an epoch, so the small ones are not ignored. A JSON file gives explicit
weights by class name (1 for a class it leaves out).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnkeras.errors import UserError

IMBALANCE_RATIO = 3.0  # warn when the largest class has over this many times the smallest


def class_weights(spec: str, labels, class_names: list[str]) -> tuple[float, ...] | None:
    """Per-class loss weights in label order for ``spec`` ('none', 'balanced' or the path
    of a JSON file {class name: weight}); None for 'none'."""
    if spec in (None, "none"):
        return None
    counts = np.bincount(np.asarray(labels, int), minlength=len(class_names))
    if spec == "balanced":
        if counts.min() == 0:
            empty = class_names[int(np.argmin(counts))]
            raise UserError(
                f"class {empty!r} has no training images; `class_weight` balanced needs them all"
            )
        return tuple(float(w) for w in counts.sum() / (len(class_names) * counts))
    path = Path(spec)
    if not path.is_file():
        raise UserError(
            f"`class_weight` must be balanced, none or a JSON file; {spec} is none of them"
        )
    try:
        given = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"`class_weight` file {path} is not valid JSON: {err}") from None
    if not isinstance(given, dict):
        raise UserError(f"`class_weight` file {path} must map class names to weights")
    unknown = sorted(set(given) - set(class_names))
    if unknown:
        raise UserError(
            f"`class_weight` file {path} names {', '.join(unknown)}, not classes of the data "
            f"({', '.join(class_names[:10])})"
        )
    weights = [given.get(name, 1.0) for name in class_names]
    if not all(isinstance(w, int | float) and w >= 0 for w in weights) or not any(weights):
        raise UserError(f"`class_weight` file {path}: weights must be numbers >= 0, not all 0")
    return tuple(float(w) for w in weights)


def imbalance_note(labels, class_names: list[str]) -> str | None:
    """A warning when the training split's largest class is over 3x its smallest."""
    counts = np.bincount(np.asarray(labels, int), minlength=len(class_names))
    big, small = int(np.argmax(counts)), int(np.argmin(counts))
    if counts[small] and counts[big] / counts[small] <= IMBALANCE_RATIO:
        return None
    return (
        f"warning: imbalanced training split: {class_names[big]!r} has {counts[big]} images, "
        f"{class_names[small]!r} {counts[small]}; `class_weight` balanced weighs them evenly"
    )
