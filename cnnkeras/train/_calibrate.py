"""Temperature scaling at the end of a run, folded into the model.

The temperature fitted on the validation split divides the classifier's kernel and bias, so
the logits are divided before the softmax inside ``model.keras`` itself: ``predict``,
``evaluate``, ``inspect`` and every TFLite file exported from it give the calibrated scores
with nothing for an app to apply. The top class never changes. With a target accuracy, the
top score below which the answer is "unknown" is found on the validation split too."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from cnnkeras import _io
from cnnkeras._files import CHECKPOINTS, MODEL_FILE
from cnnkeras._keras_internals import producing_layer
from cnnkeras.data import ImageDataset, Preprocessing, Split
from cnnkeras.evaluate import calibration, fit_temperature, nll, threshold_for
from cnnkeras.saved import predict_split
from cnnkeras.train._config import TrainConfig

RAW_FILE = "uncalibrated.keras"  # the best model as trained, until the run's report is written


def classifier(model: keras.Model) -> keras.layers.Dense | None:
    """The Dense layer with a softmax that gives ``model``'s only output, if that is how
    the model ends (every builder's and finetune's head does)."""
    if len(model.outputs) != 1:
        return None
    layer = producing_layer(model.outputs[0])
    if isinstance(layer, keras.layers.Dense) and layer.get_config()["activation"] == "softmax":
        return layer
    return None


def split_logits(model: keras.Model, dense: keras.layers.Dense, split: Split, prep: Preprocessing):
    """The logits (float64) of ``split``'s images before ``dense``'s softmax, and their
    positions in the split (as ``predict_split``)."""
    features = keras.Model(model.input, dense.input)
    kernel = np.asarray(dense.kernel, dtype=np.float64)
    bias = np.asarray(dense.bias, dtype=np.float64) if dense.use_bias else 0.0

    def logits(x: np.ndarray) -> np.ndarray:
        return np.asarray(features(x, training=False), dtype=np.float64) @ kernel + bias

    return predict_split(logits, split, prep)


def calibrate(model: keras.Model, val: Split, prep: Preprocessing) -> dict:
    """Fit the temperature on ``val`` and fold it into ``model``; what was done and why."""
    dense = classifier(model)
    if dense is None:
        return {"temperature": 1.0, "reason": "the model does not end in one softmax layer"}
    if not len(val):
        return {"temperature": 1.0, "reason": "no validation images"}
    z, kept = split_logits(model, dense, val, prep)
    y = val.labels[kept]
    temperature, reason = fit_temperature(z, y)
    record = {
        "temperature": temperature,
        "reason": reason,
        "val_nll_before": nll(z, y, 1.0),
        "val_nll_after": nll(z, y, temperature),
    }
    if temperature != 1.0:
        dense.kernel.assign(np.asarray(dense.kernel) / temperature)
        if dense.use_bias:
            dense.bias.assign(np.asarray(dense.bias) / temperature)
    return record


def calibrated_best(
    folder: Path, scores: str, data: ImageDataset, prep: Preprocessing
) -> tuple[keras.Model, dict | None]:
    """A finished run's best model (``model.keras``), calibrated and saved back when
    ``scores`` is 'calibrated', and what calibration did, with the test split's ECE, NLL and
    Brier score before it. The model as trained is kept in the checkpoint folder (removed
    with it once the report is written), so a run killed in between is calibrated once."""
    model_file = folder / MODEL_FILE
    if scores == "raw":
        return keras.saving.load_model(model_file, safe_mode=True), None
    raw = folder / CHECKPOINTS / RAW_FILE
    if not raw.is_file():
        _io.copy_file(model_file, raw)
    model = keras.saving.load_model(raw, safe_mode=True)
    test = data.splits["test"]
    before, kept = predict_split(model, test, prep)
    record = calibrate(model, data.splits["val"], prep)
    measured = calibration(test.labels[kept], before)
    record["before"] = {k: v for k, v in measured.items() if k != "bins"}
    record["before"]["accuracy"] = float((before.argmax(axis=1) == test.labels[kept]).mean())
    _io.save_model(model, model_file)
    return model, record


def score_threshold(model: keras.Model, val: Split, prep: Preprocessing, target: float) -> dict:
    """The top-score threshold at which ``model``'s validation images kept reach ``target``
    accuracy (``threshold_for``), or why there is none."""
    if not len(val):
        return {"target": target, "reason": "there are no validation images"}
    scores, kept = predict_split(model, val, prep)
    found = threshold_for(val.labels[kept], scores, target)
    if found is None:
        return {"target": target, "reason": "even the most confident validation image is wrong"}
    return found


def confident_best(
    folder: Path, config: TrainConfig, data: ImageDataset, prep: Preprocessing
) -> tuple[keras.Model, dict]:
    """A finished run's best model as its ``config`` wants its scores (``calibrated_best``)
    and, with a ``target_accuracy``, its score threshold; the second is what the report and
    config.json record: ``temperature_scaling`` and ``score_threshold``, each if there is one."""
    model, scaling = calibrated_best(folder, config.scores, data, prep)
    found = {"temperature_scaling": scaling} if scaling else {}
    target = config.target_accuracy
    if target:
        threshold = score_threshold(model, data.splits["val"], prep, target)
        if "score" in threshold:
            found["score_threshold"] = threshold
        else:
            _io.warn(
                f"no score threshold reaches {target} validation accuracy: {threshold['reason']}"
            )
    return model, found


def confidence_lines(found: dict, ece: float) -> list[str]:
    """What ``confident_best`` did, in lines for the log (``ece``: the test split's, after)."""
    lines = []
    if "temperature_scaling" in found:
        t = found["temperature_scaling"]
        lines.append(
            f"scores calibrated: temperature {t['temperature']:.3f} ({t['reason']}); "
            f"test ECE {t['before']['ece']:.4f} -> {ece:.4f}"
        )
    if "score_threshold" in found:
        t = found["score_threshold"]
        lines.append(
            f"unknown below a top score of {t['score']:.4f}: validation keeps "
            f"{t['coverage']:.1%} at accuracy {t['accuracy']:.4f} (target {t['target']})"
        )
    return lines


__all__ = [
    "calibrate",
    "calibrated_best",
    "classifier",
    "confidence_lines",
    "confident_best",
    "score_threshold",
    "split_logits",
]
