"""Dropout: a large dense head trained on few images, with and without it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import keras

from cnnkeras.demos._harness import check, curves_png, fit, load_digits_28, pm, result
from cnnkeras.demos._registry import SEEDS, register_demo
from cnnkeras.errors import UserError


def dense_head(rate: float) -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(rate)(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dropout(rate)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def dropout_held(rows: list[dict]) -> bool:
    """Without dropout, then with: a smaller train/validation gap and validation accuracy at
    least as good."""
    plain, dropped = rows
    return dropped["_gap"] < plain["_gap"] and dropped["_val"] >= plain["_val"]


@register_demo("dropout")
def dropout_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    epochs: int = 30,
    train_images: int = 500,
    rate: float = 0.5,
    lr: float = 1e-3,
) -> dict:
    """A network with a large dense head trained on few images, with and without dropout:
    the gap between training and validation accuracy, and the validation accuracy."""
    check(seeds, epochs=epochs)
    if not 0 < rate < 1:
        raise UserError("`rate` must be in (0, 1)")
    data = load_digits_28(train_images)
    runs, rows = {}, []
    for r in (0.0, rate):
        name = f"dropout {r:g}"
        # training accuracy as the model is used: measured without dropout, after training
        # (so each run keeps its model, unlike the other demos' `measure`)
        finals = []
        runs[name] = []
        for s in seeds:
            model, curves = fit(lambda r=r: dense_head(r), data, epochs=epochs, lr=lr, seed=s)
            train_acc = float(model.evaluate(data.x, data.y, verbose=0)[1])
            finals.append((train_acc, curves.val_accuracy[-1]))
            runs[name].append(curves)
        gaps = [t - v for t, v in finals]
        rows.append(
            {
                "dropout": r,
                "train accuracy": pm([t for t, _ in finals]),
                "val accuracy": pm([v for _, v in finals]),
                "gap": pm(gaps),
                "_gap": statistics.mean(gaps),
                "_val": statistics.mean(v for _, v in finals),
            }
        )
    smaller, better = rows[1]["_gap"] < rows[0]["_gap"], rows[1]["_val"] >= rows[0]["_val"]
    verdict = (
        f"with dropout the train/validation gap was {'smaller' if smaller else 'not smaller'} "
        f"({rows[1]['_gap']:.3f} against {rows[0]['_gap']:.3f}) and validation accuracy "
        f"{'as good or better' if better else 'worse'}"
    )
    png = curves_png({"val_accuracy": runs, "accuracy": runs}, f"dropout, {train_images} images")
    return result(
        "dropout",
        ["dropout", "train accuracy", "val accuracy", "gap"],
        rows,
        dropout_held(rows),
        verdict,
        png,
        train_images=train_images,
    )
