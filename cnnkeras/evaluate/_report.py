"""The evaluation report: metrics.json, confusion-matrix CSVs, PNG plots, report.md and a
self-contained report.html with the plots embedded."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras.evaluate import _plots
from cnnkeras.evaluate._metrics import compute_metrics


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
    top = next(k for k in m if k.startswith("top_"))
    lines = [
        f"# {title}",
        "",
        f"- images: {m['num_samples']}",
        f"- accuracy: **{m['accuracy']:.4f}**",
        f"- {top.replace('_', '-')}: {m[top]:.4f}",
        f"- macro F1: {m['f1']['macro']:.4f}",
        f"- mAP (mean average precision, one-vs-rest): {m['mAP']:.4f}",
    ]
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
) -> dict:
    """Compute the metrics and write every report file into ``out_dir``; return the metrics."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = compute_metrics(y_true, y_score, class_names)
    if extra:
        m.update(extra)
    _io.write_json(out / "metrics.json", m)
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
    }
    if images is not None:
        pngs["misclassified.png"] = _plots.misclassified_png(
            images, np.asarray(y_true), y_pred, class_names
        )
    for name, data in pngs.items():
        _io.write_bytes(out / name, data)

    lines = summary_lines(m, title)
    table = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    table += ["| " + " | ".join(row) + " |" for row in _table_rows(m)]
    md = [*lines, "", "## Per class", "", *table, ""]
    md += [f"![{name}]({name})" for name in pngs]
    _io.write_text(out / "report.md", "\n".join(md) + "\n")

    body = [f"<h1>{html.escape(title)}</h1>", "<ul>"]
    body += [f"<li>{html.escape(line[2:]).replace('**', '')}</li>" for line in lines[2:]]
    body += ["</ul>", "<h2>Per class</h2>", "<table>"]
    body.append("<tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr>")
    for row in _table_rows(m):
        cells = "".join(f"<td>{html.escape(c.replace('**', ''))}</td>" for c in row)
        body.append(f"<tr>{cells}</tr>")
    body.append("</table>")
    for name, data in pngs.items():
        b64 = base64.b64encode(data).decode("ascii")
        body.append(
            f'<h2>{name[:-4].replace("_", " ")}</h2><img alt="{name}" '
            f'src="data:image/png;base64,{b64}">'
        )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "img{max-width:100%}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
    _io.write_text(out / "report.html", page)
    return m
