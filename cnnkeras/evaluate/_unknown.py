"""How a classifier behaves on images of none of its classes: given scores on a split of its
own classes (known) and on another set (unknown), how well the top score tells them apart
(AUROC, where 0.5 is chance) and how many unknown images a score threshold lets through."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from cnnkeras.evaluate._plots import titled_images

KEEP_KNOWN = 0.95  # the usual operating point of out-of-distribution detection (FPR at 95% TPR)


def open_set(known: np.ndarray, unknown: np.ndarray, threshold: float | None) -> dict:
    """The AUROC of known against unknown images by top score, the share of unknown images
    accepted at the score that keeps 95% of the known ones, and at ``threshold`` (a recorded
    score threshold) the shares of both accepted."""
    k, u = np.asarray(known).max(axis=1), np.asarray(unknown).max(axis=1)
    is_known = np.r_[np.ones(len(k)), np.zeros(len(u))]
    cut = float(np.quantile(k, 1 - KEEP_KNOWN, method="lower"))
    result = {
        "images": len(u),
        "auroc": float(roc_auc_score(is_known, np.r_[k, u])),
        "keep_known": KEEP_KNOWN,
        "score_keeping_known": cut,
        "accepted_keeping_known": float((u >= cut).mean()),
    }
    if threshold is not None:
        result["threshold"] = threshold
        result["accepted_at_threshold"] = float((u >= threshold).mean())
        result["known_kept_at_threshold"] = float((k >= threshold).mean())
    return result


def unknown_lines(r: dict, spec: str) -> list[str]:
    """The report's lines on the unknown set."""
    lines = [
        f"- images of none of its classes ({spec}, {r['images']}): AUROC {r['auroc']:.4f} "
        f"(known against unknown by top score; 0.5 is chance); keeping {r['keep_known']:.0%} "
        f"of the known (score >= {r['score_keeping_known']:.4f}) accepts "
        f"{r['accepted_keeping_known']:.1%} of the unknown"
    ]
    if "threshold" in r:
        lines.append(
            f"- at the recorded threshold {r['threshold']:.4f}: {r['accepted_at_threshold']:.1%} "
            f"of the unknown images are accepted, {r['known_kept_at_threshold']:.1%} of the known "
            "kept"
        )
    return lines


def confident_unknowns_png(images, scores: np.ndarray, class_names: list[str], n: int = 15):
    """The unknown images the model is surest of, with the class it gives and the score."""
    scores = np.asarray(scores)
    order = np.argsort(-scores.max(axis=1), kind="stable")[:n]
    top = scores.argmax(axis=1)
    titles = [f"{class_names[top[i]]} {scores[i, top[i]]:.3f}" for i in order]
    heading = "the most confident answers on images of none of the classes"
    return titled_images(images, order, titles, heading=heading)


__all__ = ["KEEP_KNOWN", "confident_unknowns_png", "open_set", "unknown_lines"]
