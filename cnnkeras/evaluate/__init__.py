"""Evaluation with scikit-learn: metrics, plots and reports for a model on a dataset split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras.data import DEFAULT_SEED, Preprocessing, load_dataset, make_pipeline
from cnnkeras.errors import UserError
from cnnkeras.evaluate._metrics import compute_metrics
from cnnkeras.evaluate._report import write_report

__all__ = [
    "Predictor",
    "compute_metrics",
    "evaluate_model",
    "load_run_model",
    "predict_split",
    "write_report",
]


def load_run_model(path: str | Path):
    """A saved ``.keras`` model with the preprocessing and class names recorded beside it."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    if path.suffix != ".keras":
        raise UserError(f"{path} is not a .keras model file")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # zip, JSON and deserialisation errors all mean "not a model"
        raise UserError(f"could not load {path} as a Keras model: {err}") from err
    config_path = path.parent / "config.json"
    config = _io.read_json(config_path)
    if "preprocessing" in config:
        prep = Preprocessing.from_dict(config["preprocessing"])
    else:
        h, w, c = model.input_shape[1:]
        prep = Preprocessing(h, w, c)
    labels_path = path.parent / "labels.txt"
    names = labels_path.read_text().splitlines() if labels_path.is_file() else None
    return model, prep, names, config


class Predictor:
    """A .keras or .tflite model behind one interface: float model input in, scores out."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if path.suffix == ".tflite":
            from cnnkeras.export import TFLiteModel

            self.model = TFLiteModel(path)
            meta_path = path.parent / "preprocess.json"
            if not meta_path.is_file():
                raise UserError(f"no preprocess.json beside {path}; export it with cnnkeras export")
            self.meta = json.loads(meta_path.read_text())
            self.prep = Preprocessing.from_dict(self.meta)
            self.num_outputs = int(self.model.output["shape"][-1])
            self._predict = self.model.predict
        else:
            model, self.prep, _, self.meta = load_run_model(path)
            self.num_outputs = model.output_shape[-1]
            self._predict = lambda x: np.asarray(model(x, training=False))
        labels = path.parent / "labels.txt"
        self.class_names = labels.read_text().splitlines() if labels.is_file() else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._predict(batch)


def predict_split(model, split, prep: Preprocessing, num_classes: int, batch_size: int = 256):
    """Scores (N, K) and the preprocessed images of a split, in split order.

    ``model`` is a Keras model or any callable from a float batch to scores."""
    import keras

    if isinstance(model, keras.Model):
        keras_model = model

        def model(x):
            return np.asarray(keras_model(x, training=False))

    ds = make_pipeline(split, prep, num_classes, batch_size=batch_size, one_hot=False)
    images, scores = [], []
    for x, _ in ds:
        images.append(x.numpy())
        scores.append(np.asarray(model(images[-1])))
    return np.concatenate(scores), np.concatenate(images)


def evaluate_model(
    model_path: str | Path,
    dataset: str | None = None,
    *,
    split: str = "test",
    out: str | Path | None = None,
    seed: int | None = None,
) -> dict:
    """Evaluate a saved .keras or .tflite model on a dataset split; write the report.

    Without ``dataset``, the one recorded beside the model (config.json, preprocess.json)."""
    predictor = Predictor(model_path)
    dataset = dataset or predictor.meta.get("dataset")
    if dataset is None:
        raise UserError("no config.json or preprocess.json beside the model; pass --dataset SPEC")
    seed = seed if seed is not None else predictor.meta.get("seed", DEFAULT_SEED)
    data = load_dataset(dataset, seed=seed)
    if split not in data.splits:
        raise UserError(f"unknown split {split!r}; choose train, val or test")
    if predictor.num_outputs != data.num_classes:
        raise UserError(
            f"the model has {predictor.num_outputs} outputs but {dataset} has "
            f"{data.num_classes} classes"
        )
    names = predictor.class_names
    if names is not None and names != data.class_names:
        raise UserError(
            f"the model's labels.txt ({', '.join(names[:5])}...) differs from {dataset}'s classes"
        )
    scores, images = predict_split(predictor, data.splits[split], predictor.prep, data.num_classes)
    out = Path(out) if out else Path(model_path).parent / f"eval-{data.name}-{split}"
    title = f"{Path(model_path).name} on {dataset} ({split} split)"
    extra = {"model": str(model_path), "dataset": dataset, "split": split, "report_dir": str(out)}
    return write_report(
        out, data.splits[split].labels, scores, data.class_names, images=images, title=title,
        extra=extra,
    )  # fmt: skip
