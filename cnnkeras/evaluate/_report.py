"""The evaluation report: metrics.json, confusion-matrix CSVs, PNG plots, report.md and a
self-contained report.html with the plots embedded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkeras import _doc, _io
from cnnkeras._files import CURVES_FILE, REPORT_FILE
from cnnkeras.errors import UserError
from cnnkeras.evaluate import _errors, _plots
from cnnkeras.evaluate._calibration import coverage_curve, kept_at
from cnnkeras.evaluate._metrics import compute_metrics
from cnnkeras.evaluate._unknown import unknown_lines


def _cm_csv(cm, class_names: list[str], fmt: str) -> str:
    lines = ["true\\predicted," + ",".join(class_names)]
    for name, row in zip(class_names, cm, strict=True):
        lines.append(name + "," + ",".join(format(v, fmt) for v in row))
    return "\n".join(lines) + "\n"


def _table_rows(m: dict) -> list[tuple[str, ...]]:
    rows = []
    for name in m["class_names"]:
        ap = m["average_precision"][name]
        rows.append(
            (
                name,
                f"{m['precision']['per_class'][name]:.4f}",
                f"{m['recall']['per_class'][name]:.4f}",
                f"{m['f1']['per_class'][name]:.4f}",
                "-" if ap is None else f"{ap:.4f}",
                str(m["support"][name]),
            )
        )
    for avg in ("macro", "micro", "weighted"):
        rows.append(
            (
                f"**{avg}**",
                *(f"{m[k][avg]:.4f}" for k in ("precision", "recall", "f1")),
                f"{m['mAP']:.4f}" if avg == "macro" else "",
                str(m["num_samples"]),
            )
        )
    return rows


HEADER = ("class", "precision", "recall", "F1", "AP", "support")


def summary_lines(m: dict, title: str) -> list[str]:
    top = next(k for k in m if k.startswith("top_") and k.endswith("_accuracy"))
    lines = [
        f"# {title}",
        "",
        f"- images: {m['num_samples']}",
        f"- accuracy: **{m['accuracy']:.4f}**",
        f"- {top.replace('_', '-')}: {m[top]:.4f}",
        f"- balanced accuracy (mean recall of the classes): {m['balanced_accuracy']:.4f}",
        f"- macro F1: {m['f1']['macro']:.4f}",
        f"- mAP (mean average precision, one-vs-rest): {m['mAP']:.4f}",
    ]
    c = m["calibration"]
    line = f"- calibration: ECE {c['ece']:.4f}, NLL {c['nll']:.4f}, Brier {c['brier']:.4f}"
    if "temperature_scaling" in m:
        t = m["temperature_scaling"]
        line += (
            f" (temperature {t['temperature']:.3f}, {t['reason']}; before: ECE "
            f"{t['before']['ece']:.4f}, NLL {t['before']['nll']:.4f})"
        )
    lines.append(line)
    if "score_threshold" in m:
        t, kept = m["score_threshold"], m["at_threshold"]
        shown = "-" if kept["accuracy"] is None else f"{kept['accuracy']:.4f}"
        lines.append(
            f"- unknown below a top score of {t['score']:.4f} (the threshold for "
            f"{t['target']} accuracy on validation, where it keeps {t['coverage']:.1%}): here it "
            f"keeps {kept['coverage']:.1%} of the images, at accuracy {shown}"
        )
    if "unknown" in m:
        lines += unknown_lines(m["unknown"], m["unknown"]["spec"])
    if "tta" in m:
        t = m["tta"]
        lines.append(
            f"- with test-time augmentation ({len(t['copies'])} copies: "
            f"{', '.join(t['copies'])}): accuracy **{t['accuracy']:.4f}**, balanced accuracy "
            f"{t['balanced_accuracy']:.4f}, macro F1 {t['f1_macro']:.4f}, mAP {t['mAP']:.4f}"
        )
    if "binary" in m:
        b = m["binary"]
        lines.append(
            f"- positive class {b['positive_class']!r}: TP {b['TP']}, TN {b['TN']}, "
            f"FP {b['FP']}, FN {b['FN']}"
        )
    return lines


def write_report(
    out_dir: str | Path,
    y_true: np.ndarray,
    y_score: np.ndarray,
    class_names: list[str],
    *,
    images: np.ndarray | None = None,
    title: str = "Evaluation report",
    extra: dict | None = None,
    model=None,
    cam_note: str | None = None,
    top_losses: int = 16,
    about: dict | None = None,
    curves: bytes | None = None,
    figures: dict[str, bytes] | None = None,
) -> dict:
    """Compute the metrics and write every report file into ``out_dir``; return the metrics.

    With ``images`` the report learns from its errors: the ``top_losses`` images with the
    highest loss (with the Grad-CAM of the predicted class when ``model`` is a Keras model;
    ``cam_note`` says why not otherwise), the most confused class pairs, and right and wrong
    examples of the worst classes. ``about`` (model, data, ...) and the training ``curves``
    open the page, so that one file tells the story of a run; more ``figures`` (by file
    name) follow the plots. Class names are shown as readers see them (bytes that are not
    UTF-8 as U+FFFD; labels.txt keeps them)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    class_names = [_io.shown(name) for name in class_names]
    m = compute_metrics(y_true, y_score, class_names)
    m.update(extra or {})
    if "score_threshold" in m:
        m["at_threshold"] = kept_at(y_true, y_score, m["score_threshold"]["score"])
    m["confused_pairs"] = _errors.confused_pairs(m["confusion_matrix"], class_names)
    _io.write_text(out / "confusion_matrix.csv", _cm_csv(m["confusion_matrix"], class_names, "d"))
    _io.write_text(
        out / "confusion_matrix_normalized.csv",
        _cm_csv(m["confusion_matrix_normalized"], class_names, ".4f"),
    )
    plots = {**_plots_of(m, y_true, y_score, class_names), **(figures or {})}
    errors = {}
    if images is not None:
        plots["misclassified.png"] = _plots.misclassified_png(
            images, np.asarray(y_true), np.asarray(y_score).argmax(axis=1), class_names
        )
        errors = _learn_from_errors(m, y_true, y_score, images, model, cam_note, top_losses)
    blocks = _report_blocks(m, title, about or {}, curves, plots, errors)
    for name, data in _doc.images(blocks).items():
        _io.write_bytes(out / name, data)
    _io.write_json(out / "metrics.json", m)
    _io.write_text(out / "report.md", _doc.markdown(blocks))
    _io.write_text(out / REPORT_FILE, _doc.html_page(title, blocks))
    return m


def _plots_of(m: dict, y_true, y_score, class_names: list[str]) -> dict[str, bytes]:
    """The report's plots by file name: confusion matrices, PR curves, reliability, coverage."""
    kept = None
    if "at_threshold" in m:
        kept = {**m["at_threshold"], "score": m["score_threshold"]["score"]}
    return {
        "confusion_matrix.png": _plots.confusion_matrix_png(
            np.array(m["confusion_matrix"]), class_names, normalized=False
        ),
        "confusion_matrix_normalized.png": _plots.confusion_matrix_png(
            np.array(m["confusion_matrix_normalized"]), class_names, normalized=True
        ),
        "pr_curves.png": _plots.pr_curves_png(
            np.asarray(y_true), np.asarray(y_score), class_names, m["average_precision"]
        ),
        "reliability.png": _plots.reliability_png(
            m["calibration"]["bins"], m["calibration"]["ece"]
        ),
        "risk_coverage.png": _plots.coverage_png(*coverage_curve(y_true, y_score)[:2], kept),
    }


def _learn_from_errors(
    m: dict, y_true, y_score, images, model, cam_note: str | None, count: int
) -> dict[str, bytes]:
    """The top losses (with Grad-CAM when ``model`` is a Keras model) and the worst classes'
    right and wrong examples, as PNGs by file name; ``m`` gains ``top_losses`` and its note."""
    class_names = m["class_names"]
    rows = _errors.top_losses(np.asarray(y_true), np.asarray(y_score), class_names, count)
    m["top_losses"] = rows
    cams = None
    if model is not None and rows:
        from cnnkeras.interpret import grad_cams

        batch = np.stack([images[r["index"]] for r in rows])
        try:
            cams = grad_cams(model, batch, [class_names.index(r["predicted"]) for r in rows])
        except UserError as err:  # e.g. no feature map of 2x2 or more at this input size
            cam_note = f"no Grad-CAM: {err}"
    m["top_losses_note"] = cam_note if cams is None else "Grad-CAM of the predicted class"
    y_pred = np.asarray(y_score).argmax(axis=1)
    return {
        "top_losses.png": _errors.top_losses_png(images, rows, cams),
        "worst_classes.png": _errors.gallery_png(
            images, np.asarray(y_true), y_pred, m["f1"]["per_class"], class_names
        ),
    }


def _report_blocks(
    m: dict, title: str, about: dict, curves: bytes | None, plots: dict, errors: dict
) -> list[_doc.Block]:
    """What the report says, in order: about the run and the headline numbers (with the
    training curves), per class, confused pairs, what it learns from its errors, the plots."""
    facts = [f"{k}: {v}" for k, v in about.items()]
    facts += [line[2:] for line in summary_lines(m, title)[2:]]
    opening = [_doc.Bullets(tuple(facts))]
    if curves is not None:
        opening.append(_doc.Image(CURVES_FILE, curves, "training curves"))
    pairs = [(p["true"], p["predicted"], p["count"]) for p in m["confused_pairs"]]
    blocks = [
        _doc.Heading(title, 1),
        _doc.Section("about", tuple(opening)),
        _doc.Heading("Per class"),
        _doc.table(HEADER, _table_rows(m)),
        _doc.Section(
            "confused",
            (
                _doc.Heading("Most confused pairs"),
                _doc.table(("true", "predicted as", "images"), pairs),
            ),
        ),
    ]
    if errors:
        blocks += [
            _doc.Section(
                "top-losses",
                (
                    _doc.Heading("Top losses"),
                    _doc.Text(m["top_losses_note"] or ""),
                    _doc.Image("top_losses.png", errors["top_losses.png"], "top losses"),
                ),
            ),
            _doc.Section(
                "worst-classes",
                (
                    _doc.Heading("Worst classes: right and wrong"),
                    _doc.Image("worst_classes.png", errors["worst_classes.png"], "worst classes"),
                ),
            ),
        ]
    for name, data in plots.items():
        caption = name[:-4].replace("_", " ")
        blocks += [_doc.Heading(caption), _doc.Image(name, data, caption)]
    return blocks
