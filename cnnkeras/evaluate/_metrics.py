"""The lecture's metrics with scikit-learn: accuracy, top-k, precision/recall/F1 (per class,
macro, micro, weighted), confusion matrix, average precision per class with its mean, mAP,
and whether the scores are calibrated (ECE, NLL, Brier)."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from cnnkeras.evaluate._calibration import calibration


def compute_metrics(
    y_true: np.ndarray, y_score: np.ndarray, class_names: list[str], top_k: int = 5
) -> dict:
    """All numbers of the evaluation report for integer labels and per-class scores (N, K)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_score = np.asarray(y_score, dtype=np.float64)
    n_classes = len(class_names)
    if y_score.ndim != 2 or y_score.shape != (len(y_true), n_classes):
        raise ValueError(f"scores must be (N, {n_classes}), got {y_score.shape}")
    labels = np.arange(n_classes)
    y_pred = y_score.argmax(axis=1)

    def prf(average):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        return p, r, f

    per_class = prf(None)
    result = {
        "num_samples": len(y_true),
        "class_names": list(class_names),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        # the mean of the per-class recalls: what accuracy means when classes are imbalanced
        "balanced_accuracy": float(
            np.mean(per_class[1][np.bincount(y_true, minlength=n_classes) > 0])
        ),
    }
    if n_classes > 2:
        k = min(top_k, n_classes - 1)
        topk = skm.top_k_accuracy_score(y_true, y_score, k=k, labels=labels)
        result[f"top_{k}_accuracy"] = float(topk)
    else:  # with two classes top-1 is all there is
        result["top_1_accuracy"] = result["accuracy"]
    for i, key in enumerate(("precision", "recall", "f1")):
        result[key] = {avg: float(prf(avg)[i]) for avg in ("macro", "micro", "weighted")}
        result[key]["per_class"] = {
            name: float(v) for name, v in zip(class_names, per_class[i], strict=True)
        }
    result["support"] = {
        name: int(v)
        for name, v in zip(class_names, np.bincount(y_true, minlength=n_classes), strict=True)
    }
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    result["confusion_matrix"] = cm.tolist()
    with np.errstate(invalid="ignore", divide="ignore"):
        row_sums = cm.sum(axis=1, keepdims=True)
        result["confusion_matrix_normalized"] = np.where(row_sums > 0, cm / row_sums, 0).tolist()
    result["average_precision"] = ap = average_precisions(y_true, y_score, class_names)
    present = [v for v in ap.values() if v is not None]
    result["mAP"] = float(np.mean(present)) if present else 0.0
    result["calibration"] = calibration(y_true, y_score)
    if n_classes == 2:  # the positive class is the second name, as in scikit-learn
        tn, fp, fn, tp = cm.ravel()
        result["binary"] = {
            "positive_class": class_names[1],
            "TP": int(tp),
            "TN": int(tn),
            "FP": int(fp),
            "FN": int(fn),
        }
    return result


def average_precisions(
    y_true: np.ndarray, y_score: np.ndarray, class_names: list[str]
) -> dict[str, float | None]:
    """Each class's average precision, one against the rest; None for a class absent from
    ``y_true`` (it has no precision-recall curve, and mAP leaves it out)."""
    labels = np.arange(len(class_names))
    onehot = label_binarize(y_true, classes=labels)
    if len(class_names) == 2:
        onehot = np.hstack([1 - onehot, onehot])
    return {
        name: float(skm.average_precision_score(onehot[:, i], y_score[:, i]))
        if onehot[:, i].any()
        else None
        for i, name in enumerate(class_names)
    }


def tta_metrics(y_true: np.ndarray, y_score: np.ndarray, class_names: list[str]) -> dict:
    """The headline numbers of test-time augmented scores, for the report's side-by-side."""
    m = compute_metrics(y_true, y_score, class_names)
    return {
        "accuracy": m["accuracy"],
        "balanced_accuracy": m["balanced_accuracy"],
        "f1_macro": m["f1"]["macro"],
        "mAP": m["mAP"],
    }
