"""Evaluation with scikit-learn: metrics, plots and reports for a model on a dataset split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras.data import DEFAULT_SEED, Preprocessing, load_dataset, make_pipeline
from cnnkeras.data._pipeline import SplitImages
from cnnkeras.errors import UserError
from cnnkeras.evaluate._metrics import compute_metrics
from cnnkeras.evaluate._report import write_report

__all__ = [
    "Predictor",
    "compute_metrics",
    "evaluate_model",
    "load_run_model",
    "predict_split",
    "run_split_record",
    "write_report",
]

SPLITS_FILE = "splits.json"  # written by train beside model.keras, copied by export


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


PREDICT_BATCH = 64  # a batch's activations, not its images, set the memory of a prediction


def predict_split(model, split, prep: Preprocessing, batch_size: int = PREDICT_BATCH):
    """Scores (N, K) of a split's images in split order, and their positions in the split:
    a file that fails to decode is left out. Images stream through; none are kept.

    ``model`` is a Keras model or any callable from a float batch to scores."""
    import keras

    if isinstance(model, keras.Model):
        keras_model = model

        def model(x):
            return np.asarray(keras_model(x, training=False))

    ds = make_pipeline(
        split, prep, 1, batch_size=batch_size, one_hot=False, cache="none", positions=True
    )
    scores, kept = [], []
    for x, _, positions in ds:
        scores.append(np.asarray(model(x.numpy())))
        kept.append(positions.numpy())
    if not scores:
        raise UserError(f"none of the {len(split)} images could be decoded")
    return np.concatenate(scores), np.concatenate(kept)


def run_split_record(path: str | Path) -> dict | None:
    """The split recorded beside a model (a run's or an export's splits.json), if any."""
    record = _io.read_json(Path(path).parent / SPLITS_FILE)
    return record or None


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
    data = load_dataset(dataset, seed=seed, record=run_split_record(model_path), verbose=1)
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
    chosen = data.splits[split]
    scores, kept = predict_split(predictor, chosen, predictor.prep)
    out = Path(out) if out else Path(model_path).parent / f"eval-{data.name}-{split}"
    title = f"{Path(model_path).name} on {dataset} ({split} split)"
    extra = {"model": str(model_path), "dataset": dataset, "split": split, "report_dir": str(out),
             "decode_failures": len(chosen) - len(kept)}  # fmt: skip
    images = SplitImages(chosen.subset(kept), predictor.prep)
    return write_report(
        out, chosen.labels[kept], scores, data.class_names, images=images, title=title,
        extra=extra,
    )  # fmt: skip
