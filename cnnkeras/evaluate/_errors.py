"""The errors that matter, as fastai's ClassificationInterpretation shows them: the test
images with the highest loss (with where the model looked), the class pairs it confuses
most, and a few right and wrong examples of its worst classes."""

from __future__ import annotations

import numpy as np

from cnnkeras._figures import Tile, in_rows, tiles_png

NO_CAM_TFLITE = "a .tflite model has no gradients, so top losses are shown without Grad-CAM"


def losses(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Cross-entropy of each image: -log of the score of its true class."""
    picked = np.asarray(y_score)[np.arange(len(y_true)), np.asarray(y_true)]
    return -np.log(np.clip(picked, 1e-7, 1.0))


def top_losses(y_true, y_score, class_names: list[str], n: int = 16) -> list[dict]:
    """The ``n`` images with the highest loss, highest first."""
    loss = losses(y_true, y_score)
    order = np.argsort(loss)[::-1][:n]
    y_pred = np.asarray(y_score).argmax(axis=1)
    return [
        {
            "index": int(i),
            "true": class_names[int(y_true[i])],
            "predicted": class_names[int(y_pred[i])],
            "score": float(y_score[i][y_pred[i]]),
            "loss": float(loss[i]),
        }
        for i in order
    ]


def confused_pairs(cm, class_names: list[str], n: int = 10) -> list[dict]:
    """The off-diagonal cells of the confusion matrix with the most images, most first."""
    cm = np.asarray(cm)
    cells = [(int(cm[t, p]), t, p) for t in range(len(cm)) for p in range(len(cm)) if t != p]
    cells = sorted((c for c in cells if c[0] > 0), key=lambda c: (-c[0], c[1], c[2]))[:n]
    return [{"true": class_names[t], "predicted": class_names[p], "count": c} for c, t, p in cells]


def top_losses_png(images, rows: list[dict], cams: np.ndarray | None) -> bytes:
    """A grid of the top-loss images, titled true/predicted/score/loss, with the Grad-CAM of
    the predicted class over each when ``cams`` is given."""
    titles = [
        f"{r['true']} -> {r['predicted']}\nscore {r['score']:.2f}, loss {r['loss']:.2f}"
        for r in rows
    ]
    tiles = [
        Tile(images[row["index"]], title, None if cams is None else cams[k])
        for k, (row, title) in enumerate(zip(rows, titles, strict=True))
    ]
    return tiles_png(in_rows(tiles, 4), inches=(2.6, 2.8))


def gallery_png(
    images, y_true, y_pred, f1: dict, class_names: list[str], worst: int = 3, per: int = 4
):
    """For the ``worst`` classes by F1: up to ``per`` right and ``per`` wrong examples each
    (wrong: images of that class predicted as another)."""
    ranked = sorted(class_names, key=lambda c: f1[c])[:worst]
    rows = []
    for name in ranked:
        c = class_names.index(name)
        right = np.flatnonzero((y_true == c) & (y_pred == c))[:per]
        wrong = np.flatnonzero((y_true == c) & (y_pred != c))[:per]
        row: list[Tile | None] = [Tile(images[i], f"{name}: right") for i in right]
        row += [None] * (per - len(right))
        row += [Tile(images[i], f"as {class_names[y_pred[i]]}") for i in wrong]
        rows.append(row + [None] * (2 * per - len(row)))
    labels = [f"{name}\nF1 {f1[name]:.2f}" for name in ranked]
    return tiles_png(rows, inches=(1.5, 1.9), row_labels=labels)
