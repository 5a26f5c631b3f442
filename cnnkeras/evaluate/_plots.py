"""Report figures as PNG bytes: confusion matrix, precision-recall curves, misclassified
examples and training curves."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from cnnkeras._figures import Tile, in_rows, plt, png_bytes, tiles_png


def confusion_matrix_png(cm: np.ndarray, class_names: list[str], normalized: bool) -> bytes:
    cm = np.asarray(cm, dtype=float)
    n = len(class_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalized else None)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true")
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    if n <= 30:
        threshold = cm.max() / 2 if cm.max() else 0.5
        for i in range(n):
            for j in range(n):
                text = f"{cm[i, j]:.2f}" if normalized else f"{int(cm[i, j])}"
                color = "white" if cm[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    ax.set_title("confusion matrix" + (" (row-normalised)" if normalized else ""))
    return png_bytes(fig)


def pr_curves_png(y_true: np.ndarray, y_score: np.ndarray, class_names: list[str], ap) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 5))
    for i, name in enumerate(class_names):
        positive = y_true == i
        if not positive.any():
            continue
        precision, recall, _ = precision_recall_curve(positive, y_score[:, i])
        ax.plot(recall, precision, lw=1.2, label=f"{name} (AP {ap[name]:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title("precision-recall, one-vs-rest")
    if len(class_names) <= 20:
        ax.legend(fontsize=7, loc="lower left")
    return png_bytes(fig)


def titled_images(images, picks, titles: list[str], heading: str = "", empty: str = "") -> bytes:
    """``images[i]`` for each ``i`` of ``picks`` with its title, five a row, as PNG bytes."""
    tiles = [Tile(images[int(i)], title) for i, title in zip(picks, titles, strict=True)]
    return tiles_png(in_rows(tiles, 5), heading=heading, empty=empty)


def misclassified_png(
    images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], n: int = 25
) -> bytes:
    wrong = np.flatnonzero(y_true != y_pred)[:n]
    titles = [f"true {class_names[y_true[i]]}\npred {class_names[y_pred[i]]}" for i in wrong]
    return titled_images(images, wrong, titles, empty="no misclassified images")


def reliability_png(bins: list[dict], ece: float) -> bytes:
    """The reliability diagram: accuracy against mean top score in each bin (the diagonal is
    a calibrated model), bar widths the bins, the share of images under each bar."""
    fig, ax = plt.subplots(figsize=(5, 5))
    total = sum(b["count"] for b in bins) or 1
    for b in bins:
        width = b["upper"] - b["lower"]
        ax.bar(b["lower"], b["accuracy"], width=width, align="edge", color="#4c78a8", ec="white")
        ax.plot([b["lower"], b["upper"]], [b["confidence"]] * 2, color="#e45756", lw=2)
        ax.text(b["lower"] + width / 2, 0.02, f"{b['count'] / total:.0%}", ha="center", fontsize=6)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    ax.plot([], [], color="#e45756", lw=2, label="mean top score of the bin")
    ax.set(xlabel="top score", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"reliability (ECE {ece:.4f})")
    ax.legend(loc="upper left", fontsize=8)
    return png_bytes(fig)


def coverage_png(coverage: np.ndarray, accuracy: np.ndarray, kept: dict | None) -> bytes:
    """The risk-coverage curve: the accuracy of the images kept against the share kept, the
    most confident first; with ``kept`` (a score threshold's coverage), where it cuts."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(np.r_[0.0, coverage], np.r_[accuracy[:1], accuracy], where="post", color="#4c78a8")
    if kept and kept["accuracy"] is not None:
        ax.axvline(kept["coverage"], color="#e45756", ls="--", lw=1)
        ax.annotate(
            f"score >= {kept['score']:.3f}: {kept['coverage']:.0%} kept, "
            f"accuracy {kept['accuracy']:.3f}",
            (kept["coverage"], kept["accuracy"]),
            xytext=(5, -25),
            textcoords="offset points",
            fontsize=8,
            color="#e45756",
        )
    ax.set(xlabel="share of images kept (highest top score first)", ylabel="accuracy of the kept")
    ax.set(xlim=(0, 1.01), ylim=(max(0.0, float(accuracy.min()) - 0.05), 1.005))
    ax.set_title("risk-coverage: answer only above a score threshold")
    return png_bytes(fig)


def training_curves_png(history: dict[str, list[float]]) -> bytes:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(epochs, values, style, label=prefix + key)
        ax.set(xlabel="epoch", title=key)
        ax.legend()
    return png_bytes(fig)
