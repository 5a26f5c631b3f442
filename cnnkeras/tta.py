"""Test-time augmentation: average a model's scores over fixed augmented copies of each image.

The copies repeat the run's recorded geometric augmentation at half its training range, one
fixed copy per direction: a run trained with flips is also shown the mirror image, one with
rotation the image turned by +-9 degrees, with zoom a 5% zoom-in, with translation shifts of
5% of the side along both diagonals. A run trained without flips (digits) is never shown a
mirrored image; RandAugment, MixUp and CutMix have no fixed copies and add none."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from cnnkeras.data import ROTATION, TRANSLATION, ZOOM


def tta_copies(augment: Sequence[str]) -> list[dict]:
    """The copies for a recorded augmentation list: each a dict of ``name``, ``angle``
    (turns), ``scale`` (> 1 zooms in), ``shift`` (fractions of the side, x and y) and
    ``flip``; the first is the image itself."""
    base = [{"name": "original", "angle": 0.0, "scale": 1.0, "shift": (0.0, 0.0)}]
    if "rotation" in augment:
        base += [
            {"name": f"rotated {sign}{360 * ROTATION / 2:g} deg", "angle": s * ROTATION / 2}
            for sign, s in (("+", 1), ("-", -1))
        ]
    if "zoom" in augment:
        base.append({"name": f"zoomed in {100 * ZOOM / 2:g}%", "scale": 1 + ZOOM / 2})
    if "translation" in augment:
        d = TRANSLATION / 2
        base += [
            {"name": f"shifted {sign}{100 * d:g}%", "shift": (s * d, s * d)}
            for sign, s in (("+", 1), ("-", -1))
        ]
    copies = [{"angle": 0.0, "scale": 1.0, "shift": (0.0, 0.0), **c, "flip": False} for c in base]
    if "flip" in augment:
        copies += [{**c, "name": c["name"] + ", mirrored", "flip": True} for c in copies]
    return copies


def _matrix(copy: dict, height: int, width: int) -> list[float]:
    """The output-to-input pixel map of a copy, as ``keras.ops.image.affine_transform``
    takes it: rotate by ``angle`` and zoom by ``scale`` about the centre, then shift."""
    theta = 2 * math.pi * copy["angle"]
    cos, sin = math.cos(theta) / copy["scale"], math.sin(theta) / copy["scale"]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    dx, dy = copy["shift"][0] * width, copy["shift"][1] * height
    # input = A (output - centre) + centre - shift, A = R(-theta) / scale
    return [cos, sin, cx - cos * cx - sin * cy - dx, -sin, cos, cy + sin * cx - cos * cy - dy, 0, 0]


def augmented(batch: np.ndarray, copy: dict) -> np.ndarray:
    """One copy of a (N, H, W, C) float batch; blank (zero) where the image moved away, as
    training's augmentation fills."""
    import keras

    x = np.asarray(batch, np.float32)
    if copy.get("flip"):
        x = x[:, :, ::-1, :]
    if copy["angle"] or copy["scale"] != 1 or any(copy["shift"]):
        transform = np.array(_matrix(copy, x.shape[1], x.shape[2]), np.float32)
        x = keras.ops.convert_to_numpy(
            keras.ops.image.affine_transform(x, transform, fill_mode="constant", fill_value=0)
        )
    return np.ascontiguousarray(x)


class TTA:
    """``predict`` (float batch -> scores) averaged over the copies of ``augment``: a drop-in
    for a model wherever scores of a batch are asked for (``predict_split``)."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], augment: Sequence[str]):
        self.predict = predict
        self.copies = tta_copies(augment)

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.copies]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        scores = [np.asarray(self.predict(augmented(batch, c)), np.float64) for c in self.copies]
        return np.mean(scores, axis=0)
