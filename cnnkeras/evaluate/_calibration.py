"""Whether a score of 0.9 is right 90% of the time: expected calibration error (ECE), the
negative log-likelihood and Brier score, the reliability diagram's bins, and temperature
scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one scalar T dividing
the logits, fitted by validation NLL. It rescales and never reorders, so accuracy stays.

And "none of these": the risk-coverage curve (the accuracy of the images kept against the
share kept, keeping the highest top scores first) and the score threshold that reaches a
target accuracy, below which an app answers "unknown"."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

BINS = 15  # Guo et al.'s equal-width bins of the top score
TEMPERATURES = (0.05, 20.0)  # the range searched: sharpen 20x to flatten 20x
_TINY = np.finfo(np.float32).tiny  # a float32 softmax rounds smaller scores to 0


def calibration(y_true: np.ndarray, y_score: np.ndarray, bins: int = BINS) -> dict:
    """ECE over ``bins`` equal-width bins of the top score (|accuracy - mean top score| of
    each bin, weighted by its share of images), NLL (mean -log score of the true class) and
    the multi-class Brier score (mean squared distance to the one-hot label, 0 to 2), with
    the non-empty bins for the reliability diagram."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_score, dtype=np.float64)
    top, right = p.max(axis=1), p.argmax(axis=1) == y
    which = np.clip(np.ceil(top * bins).astype(int) - 1, 0, bins - 1)  # bins (a, b]
    table, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            accuracy, confidence = float(right[inside].mean()), float(top[inside].mean())
            ece += inside.mean() * abs(accuracy - confidence)
            table.append(
                {
                    "lower": b / bins,
                    "upper": (b + 1) / bins,
                    "count": int(inside.sum()),
                    "accuracy": accuracy,
                    "confidence": confidence,
                }
            )
    onehot = np.eye(p.shape[1])[y]
    return {
        "ece": float(ece),
        "nll": float(-np.log(np.maximum(p[np.arange(len(y)), y], _TINY)).mean()),
        "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
        "bins": table,
    }


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, stable for any logits. (scipy.special's takes the
    array-API route, which trips over the blocked JAX import of a TensorFlow process.)"""
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def scaled(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The softmax of ``logits / temperature`` (float64)."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """The mean negative log-likelihood of labels ``y`` under ``logits / temperature``."""
    return float(-log_softmax(logits / temperature)[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> tuple[float, str]:
    """The temperature that minimises the NLL of ``logits`` (validation's) and why, or 1.0
    and why not: without a single error the NLL falls for ever as the scores sharpen, so
    there is nothing to fit. NLL is convex in 1/T; the bounded search finds its minimum."""
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return 1.0, "no validation images"
    if (z.argmax(axis=1) == y).all():
        return 1.0, "validation has no error to calibrate on"
    low, high = TEMPERATURES
    found = minimize_scalar(
        lambda beta: nll(z, y, 1.0 / beta),
        bounds=(1.0 / high, 1.0 / low),
        method="bounded",
        options={"xatol": 1e-6},
    )
    temperature = float(1.0 / found.x)
    return temperature, f"minimises the validation NLL ({len(y)} images)"


def coverage_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each distinct top score t, high to low: the share of images scored >= t, the
    accuracy among them, and t."""
    y, p = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    top, right = p.max(axis=1), p.argmax(axis=1) == y
    order = np.argsort(-top, kind="stable")
    top, right = top[order], right[order]
    last = np.r_[top[1:] != top[:-1], True]  # the last image of each run of equal scores
    kept = np.arange(1, len(top) + 1)[last]
    return kept / len(top), np.cumsum(right)[last] / kept, top[last]


def kept_at(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict:
    """The share of images whose top score is >= ``threshold`` and their accuracy."""
    p = np.asarray(y_score, dtype=np.float64)
    kept = p.max(axis=1) >= threshold
    right = p.argmax(axis=1) == np.asarray(y_true)
    accuracy = float(right[kept].mean()) if kept.any() else None
    return {"coverage": float(kept.mean()), "accuracy": accuracy}


def threshold_for(y_true: np.ndarray, y_score: np.ndarray, target: float) -> dict | None:
    """The lowest score threshold at which the kept images (top score >= it) are at least
    ``target`` accurate, keeping as many as possible; None when even the single most
    confident image is wrong."""
    coverage, accuracy, score = coverage_curve(y_true, y_score)
    ok = np.flatnonzero(accuracy >= target)
    if not len(ok):
        return None
    i = ok[-1]
    return {
        "target": target,
        "score": float(score[i]),
        "coverage": float(coverage[i]),
        "accuracy": float(accuracy[i]),
    }


__all__ = [
    "BINS",
    "calibration",
    "coverage_curve",
    "fit_temperature",
    "kept_at",
    "nll",
    "scaled",
    "threshold_for",
]
