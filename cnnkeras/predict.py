"""Classify image files with a .keras or .tflite model, preprocessed exactly as recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkeras.data import preprocess_images, read_image
from cnnkeras.errors import UserError
from cnnkeras.saved import Predictor


def predict_files(
    model_path: str | Path, images: list[str], top_k: int = 3, tta: bool = False
) -> list[dict]:
    """One result per file: the top-k labels and scores, or the error for that file. With
    ``tta``, each result has ``tta``: the top-k of the scores averaged over test-time
    augmented copies (following the run's augmentation), beside the plain ``top``."""
    if top_k < 1:
        raise UserError("`top_k` must be >= 1")
    predictor = Predictor(model_path)
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
        results.append(result)
    return results


def _top(scores: np.ndarray, names: list[str], k: int) -> list[dict]:
    order = np.argsort(scores)[::-1][:k]
    return [{"label": names[i], "score": float(scores[i])} for i in order]


def predict_text(results: list[dict]) -> str:
    """The predictions of ``predict_files`` a line each (files that failed are left out)."""

    def shown(top: list[dict]) -> str:
        return ", ".join(f"{p['label']} {p['score']:.3f}" for p in top)

    return "\n".join(
        f"{r['image']}: {shown(r['top'])}"
        + (f" | with TTA: {shown(r['tta'])}" if "tta" in r else "")
        for r in results
        if "top" in r
    )
