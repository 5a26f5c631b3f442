"""Classify image files with a .keras or .tflite model, preprocessed exactly as recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkeras.data import preprocess_images, read_image
from cnnkeras.errors import UserError
from cnnkeras.saved import Predictor


def predict_files(
    model_path: str | Path,
    images: list[str],
    top_k: int = 3,
    tta: bool = False,
    threshold: float | str | None = None,
) -> list[dict]:
    """One result per file: the top-k labels and scores, or the error for that file. With
    ``tta``, each result has ``tta``: the top-k of the scores averaged over test-time
    augmented copies (following the run's augmentation), beside the plain ``top``. With a
    ``threshold`` (a score, or 'auto': the one recorded by ``train --target-accuracy``), a
    file whose top score is below it is ``unknown``."""
    if top_k < 1:
        raise UserError("`top_k` must be >= 1")
    predictor = Predictor(model_path)
    if threshold == "auto":
        threshold = predictor.score_threshold
        if threshold is None:
            raise UserError(
                f"no score threshold is recorded for {model_path}; train with "
                "--target-accuracy, or pass a score to --threshold"
            )
    elif threshold is not None and not (isinstance(threshold, int | float) and 0 <= threshold <= 1):
        raise UserError(f"`threshold` must be auto or a score in [0, 1], got {threshold!r}")
    averaged = predictor.with_tta() if tta else None
    names = predictor.class_names or [str(i) for i in range(predictor.num_outputs)]
    results = []
    for image_path in images:
        try:
            x = preprocess_images([read_image(image_path)], predictor.prep)
        except UserError as err:
            results.append({"image": image_path, "error": str(err)})
            continue
        result = {"image": image_path, "top": _top(predictor(x)[0], names, top_k)}
        if averaged is not None:
            result["tta"] = _top(averaged(x)[0], names, top_k)
        if threshold is not None:
            chosen = result.get("tta", result["top"])[0]
            result["unknown"] = chosen["score"] < float(threshold)
            result["threshold"] = float(threshold)
        results.append(result)
    return results


def _top(scores: np.ndarray, names: list[str], k: int) -> list[dict]:
    """The k best classes; equal scores (an int8 file's often are) in class order, as argmax,
    MediaPipe Tasks and the browser app rank them."""
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"label": names[i], "score": float(scores[i])} for i in order]


def predict_text(results: list[dict]) -> str:
    """The predictions of ``predict_files`` a line each (files that failed are left out)."""

    def shown(top: list[dict]) -> str:
        return ", ".join(f"{p['label']} {p['score']:.3f}" for p in top)

    def unknown(r: dict) -> str:
        return f"unknown (top score below {r['threshold']:.3f}): " if r.get("unknown") else ""

    return "\n".join(
        f"{r['image']}: {unknown(r)}{shown(r['top'])}"
        + (f" | with TTA: {shown(r['tta'])}" if "tta" in r else "")
        for r in results
        if "top" in r
    )
