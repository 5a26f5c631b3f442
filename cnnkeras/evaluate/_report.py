"""The evaluation report: metrics.json, confusion-matrix CSVs, PNG plots, report.md and a
self-contained report.html with the plots embedded."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from cnnkeras import _html, _io
from cnnkeras._files import REPORT_FILE
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
    if extra:
        m.update(extra)
    kept = None
    if "score_threshold" in m:
        m["at_threshold"] = kept_at(y_true, y_score, m["score_threshold"]["score"])
        kept = {**m["at_threshold"], "score": m["score_threshold"]["score"]}
    _io.write_text(out / "confusion_matrix.csv", _cm_csv(m["confusion_matrix"], class_names, "d"))
    _io.write_text(
        out / "confusion_matrix_normalized.csv",
        _cm_csv(m["confusion_matrix_normalized"], class_names, ".4f"),
    )
    y_pred = np.asarray(y_score).argmax(axis=1)
    pngs = {
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
    m["confused_pairs"] = _errors.confused_pairs(m["confusion_matrix"], class_names)
    errors = {}
    if images is not None:
        pngs["misclassified.png"] = _plots.misclassified_png(
            images, np.asarray(y_true), y_pred, class_names
        )
        rows = _errors.top_losses(np.asarray(y_true), np.asarray(y_score), class_names, top_losses)
        m["top_losses"] = rows
        cams = None
        if model is not None and rows:
            from cnnkeras.interpret import grad_cams

            batch = np.stack([images[r["index"]] for r in rows])
            try:
                cams = grad_cams(model, batch, [class_names.index(r["predicted"]) for r in rows])
            except UserError as err:  # e.g. no feature map of 2x2 or more at this input size
                cam_note = f"no Grad-CAM: {err}"
        errors["top_losses.png"] = _errors.top_losses_png(images, rows, cams)
        errors["worst_classes.png"] = _errors.gallery_png(
            images, np.asarray(y_true), y_pred, m["f1"]["per_class"], class_names
        )
        m["top_losses_note"] = cam_note if cams is None else "Grad-CAM of the predicted class"
    pngs.update(figures or {})
    if curves is not None:
        pngs["training_curves.png"] = curves
    for name, data in {**pngs, **errors}.items():
        _io.write_bytes(out / name, data)
    _io.write_json(out / "metrics.json", m)

    lines = summary_lines(m, title)
    about = about or {}
    table = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    table += ["| " + " | ".join(row) + " |" for row in _table_rows(m)]
    pairs = [(p["true"], p["predicted"], str(p["count"])) for p in m["confused_pairs"]]
    md = [f"# {title}", "", *(f"- {k}: {v}" for k, v in about.items()), *lines[1:]]
    md += ["", "## Per class", "", *table, "", "## Most confused pairs", ""]
    md += ["| true | predicted as | images |", "|---|---|---|"]
    md += [f"| {t} | {p} | {c} |" for t, p, c in pairs] or ["(none)"]
    if "top_losses" in m:
        md += [
            "",
            "## Top losses",
            "",
            m["top_losses_note"] or "",
            "",
            "![top losses](top_losses.png)",
        ]
        md += ["", "## Worst classes: right and wrong", "", "![worst classes](worst_classes.png)"]
    md += ["", *(f"![{name}]({name})" for name in pngs)]
    _io.write_text(out / "report.md", "\n".join(md) + "\n")

    body = [f"<h1>{html.escape(title)}</h1>", '<section id="about"><ul>']
    body += [f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in about.items()]
    body += [f"<li>{html.escape(line[2:]).replace('**', '')}</li>" for line in lines[2:]]
    body.append("</ul>")
    if curves is not None:
        body.append(_html.img("training_curves.png", curves))
    body += ["</section>", "<h2>Per class</h2>", *_html.table(HEADER, _table_rows(m))]
    body += ['<section id="confused"><h2>Most confused pairs</h2>']
    body += _html.table(("true", "predicted as", "images"), pairs) if pairs else ["<p>none</p>"]
    body.append("</section>")
    if "top_losses" in m:
        body += ['<section id="top-losses"><h2>Top losses</h2>']
        body += [
            f"<p>{html.escape(m['top_losses_note'] or '')}</p>",
            _html.img("top_losses.png", errors["top_losses.png"]),
        ]
        body += [
            "</section>",
            '<section id="worst-classes"><h2>Worst classes: right and wrong</h2>',
        ]
        body += [_html.img("worst_classes.png", errors["worst_classes.png"]), "</section>"]
    for name, data in pngs.items():
        if name != "training_curves.png":
            body.append(f"<h2>{name[:-4].replace('_', ' ')}</h2>{_html.img(name, data)}")
    page = _html.page(title, body)
    _io.write_text(out / REPORT_FILE, page)
    return m
