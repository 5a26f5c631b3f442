"""A saved model with what was recorded beside it: the one place that opens a run's
``model.keras`` or an exported ``model_*.tflite`` and the record beside it.

One record schema serves both (``RECORD_FORMAT``): ``train`` writes it as ``config.json``
beside ``model.keras`` (with every training option after the shared fields), ``export`` as
``preprocess.json`` beside its ``.tflite`` files (with the quantization of each file, for
apps). The shared fields are ``format``, ``kind`` ("run" or "export"), ``preprocessing``
(height, width, channels, scale, offset, color_order), ``class_names``, ``num_classes``,
``dataset``, ``seed`` and ``augment`` (the training augmentation, which test-time
augmentation follows; a run's plan holds it resolved). ``labels.txt`` and ``splits.json``
sit beside both. Records written before the schema (an export's flat ``preprocess.json``)
are read as the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from cnnkeras import _io
from cnnkeras._files import BATCH_FILE, CONFIG_FILE, LABELS_FILE, PREPROCESS_FILE, SPLITS_FILE
from cnnkeras.data import DEFAULT_SEED, Preprocessing, make_pipeline
from cnnkeras.errors import UserError

if TYPE_CHECKING:
    from cnnkeras.tta import TTA

PREDICT_BATCH = 64  # a batch's activations, not its images, set the memory of a prediction
RECORD_FORMAT = 1
_PREP_KEYS = ("height", "width", "channels", "scale", "offset", "resize", "color_order")


def model_record(
    kind: str,
    prep: Preprocessing,
    class_names: list[str] | None,
    dataset,
    seed: int,
    augment: Sequence[str] = (),
) -> dict:
    """The shared fields of a record, as train and export write them first. ``augment``:
    the training augmentation, which test-time augmentation follows."""
    return {
        "format": RECORD_FORMAT,
        "kind": kind,
        "preprocessing": prep.to_dict(),
        "class_names": class_names,
        "num_classes": len(class_names) if class_names else None,
        "dataset": dataset,
        "seed": seed,
        "augment": list(augment),
    }


def recorded_augment(record: dict) -> list[str]:
    """The training augmentation of a record: a run's plan holds it resolved (its config's
    ``augment`` may say 'auto'), an export's record as ``augment``."""
    if "plan" in record:
        return list(record["plan"].get("augment", []))
    augment = record.get("augment")
    return list(augment) if isinstance(augment, list) else []


def read_record(path: str | Path) -> dict:
    """The record file ``path`` in the current schema ({} when there is none)."""
    record = _io.read_json(path)
    if record and "preprocessing" not in record and "height" in record:  # an early export
        prep = {k: record.pop(k) for k in _PREP_KEYS if k in record}
        record = {"format": 0, "kind": "export", "preprocessing": prep, **record}
    return record


def read_labels(folder: str | Path) -> list[str] | None:
    """The class names recorded in ``folder``, or None where there is no labels.txt."""
    path = Path(folder) / LABELS_FILE
    return _io.read_text(path).splitlines() if path.is_file() else None


def run_split_record(path: str | Path) -> dict | None:
    """The split recorded beside a model (a run's or an export's splits.json), if any."""
    record = _io.read_json(Path(path).parent / SPLITS_FILE)
    return record or None


class LoadedModel(NamedTuple):
    """A loaded ``.keras`` model with its preprocessing, class names and record."""

    model: object  # keras.Model; not imported here, so that this module stays light
    prep: Preprocessing
    class_names: list[str] | None
    record: dict


def load_keras(path: str | Path, *, compile: bool = True):
    """``keras.saving.load_model`` with ``safe_mode=True`` (no Lambda code runs), its
    failures one line that says what is wrong with the file."""
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):
        raise UserError(
            f"could not load {path} as a Keras model: not a complete .keras file (cut short "
            "or damaged)"
        )
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except Exception as err:  # zip, JSON and deserialisation errors all mean "not a model"
        text = str(err)
        if "Lambda" in text and "safe_mode" in text:
            raise UserError(
                f"{path} holds a Lambda layer, whose Python code cnnkeras never runs (models "
                "load with safe_mode); rebuild the model without Lambda layers"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
        raise UserError(f"could not load {path} as a Keras model: {first}") from None


def load_run_model(path: str | Path) -> LoadedModel:
    """A saved ``.keras`` model with what its run recorded.

    The preprocessing comes from the run's config.json; a bare model file gets the plain
    0..1 scaling of its input shape. Loading is ``safe_mode=True``: no Lambda code runs."""

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    if path.suffix != ".keras":
        raise UserError(f"{path} is not a .keras model file")
    model = load_keras(path, compile=False)
    record = read_record(path.parent / CONFIG_FILE)
    if "preprocessing" in record:
        prep = Preprocessing.from_dict(record["preprocessing"])
    else:
        h, w, c = model.input_shape[1:]
        prep = Preprocessing(h, w, c)
    return LoadedModel(model, prep, read_labels(path.parent), record)


class Predictor:
    """A .keras or .tflite model behind one interface: float model input in, scores out,
    with its preprocessing, class names and record (``meta``: config.json of a run,
    preprocess.json of an export, in one schema)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path
        if path.suffix == ".tflite":
            from cnnkeras._litert import TFLiteModel

            self.model = TFLiteModel(path)
            meta_path = path.parent / PREPROCESS_FILE
            if not meta_path.is_file():
                raise UserError(
                    f"no {PREPROCESS_FILE} beside {path}; export the model with cnnkeras export"
                )
            self.meta = read_record(meta_path)
            self.prep = Preprocessing.from_dict(self.meta["preprocessing"])
            self.class_names = read_labels(path.parent)
            self.num_outputs = int(self.model.output["shape"][-1])
            self._predict = self.model.predict
            self.keras_model = None  # no gradients: no Grad-CAM
        else:
            model, self.prep, self.class_names, self.meta = load_run_model(path)
            self.keras_model = model
            self.num_outputs = model.output_shape[-1]
            self._predict = lambda x: np.asarray(model(x, training=False))

    @property
    def dataset(self) -> str | None:
        """The dataset the model was trained on (a run) or checked against (an export)."""
        return self.meta.get("dataset")

    @property
    def seed(self) -> int:
        return self.meta.get("seed", DEFAULT_SEED)

    @property
    def score_threshold(self) -> float | None:
        """The top score below which the answer is "unknown", as training found it for a
        target accuracy (``train --target-accuracy``), if it did."""
        found = self.meta.get("score_threshold")
        return found["score"] if found else None

    def with_tta(self) -> TTA:
        """This model averaged over test-time augmented copies of each image, following its
        recorded training augmentation."""
        from cnnkeras.tta import TTA

        return TTA(self._predict, recorded_augment(self.meta))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._predict(batch)


def predict_split(
    model: Callable, split, prep: Preprocessing, batch_size: int = PREDICT_BATCH
) -> tuple[np.ndarray, np.ndarray]:
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


__all__ = [
    "BATCH_FILE",
    "CONFIG_FILE",
    "LABELS_FILE",
    "PREDICT_BATCH",
    "PREPROCESS_FILE",
    "RECORD_FORMAT",
    "SPLITS_FILE",
    "LoadedModel",
    "Predictor",
    "load_run_model",
    "model_record",
    "predict_split",
    "read_labels",
    "read_record",
    "run_split_record",
]
