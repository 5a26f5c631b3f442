"""What an export says about itself: the table ``cnnkeras export`` prints and the model card."""

from __future__ import annotations


def parity_cells(row: dict) -> tuple[str, str, str, str]:
    """Accuracy, agreement, max output difference and ECE of a report row as table cells ("-"
    without a dataset)."""
    return (
        f"{row['accuracy']:.4f}" if "accuracy" in row else "-",
        f"{100 * row['agreement']:.2f}%" if "agreement" in row else "-",
        f"{row['max_abs_diff']:.4f}" if "max_abs_diff" in row else "-",
        f"{row['ece']:.4f}" if "ece" in row else "-",
    )


def export_text(report: dict) -> str:
    """An ``export_model`` report as the table ``cnnkeras export`` prints."""
    lines = []
    if "keras_accuracy" in report:
        lines.append(
            f"Keras model: accuracy {report['keras_accuracy']:.4f}, ECE "
            f"{report['keras_ece']:.4f} on {report['test_images']} test images"
        )
    lines.append(
        f"{'variant':<11}{'KiB':>7}{'accuracy':>10}{'agreement':>11}{'max diff':>10}"
        f"{'ECE':>8}{'ms':>8}{'phone acc':>11}"
    )
    for variant, r in report["variants"].items():
        acc, agree, diff, ece = parity_cells(r)
        lines.append(
            f"{variant:<11}{r['bytes'] / 1024:>7.0f}{acc:>10}{agree:>11}{diff:>10}{ece:>8}"
            f"{r['median_ms']:>8.3f}{_phone_cell(r):>11}"
        )
    if "int8_repair" in report:
        kept = report["int8_repair"]["kept_float"]
        lines.append(f"int8_mixed keeps {len(kept)} layer(s) in float: {', '.join(kept)}")
    lines.append(
        "phone acc: MediaPipe Tasks' ImageClassifier (the runtime of phone apps) on the test "
        "images as stored, resized by MediaPipe"
    )
    lines.append(f"files: {report['out']}")
    if report.get("web"):
        lines.append(
            f"browser app: cnnkeras serve {report['out']}, or copy the folder to any static host"
        )
    return "\n".join(lines)


def bench_infer_text(r: dict) -> str:
    """A ``bench_infer`` result in one line."""
    return (
        f"{r['model']} ({r['runtime']}, {r['file_bytes'] / 1024:.0f} KiB): median "
        f"{r['median_ms']:.3f} ms, p90 {r['p90_ms']:.3f} ms, {r['images_per_sec']:,.0f} images/s"
    )


def _phone_cell(row: dict) -> str:
    return f"{row['phone_accuracy']:.4f}" if "phone_accuracy" in row else "-"


def model_card(name: str, model, report: dict, meta: dict) -> str:
    """The export's model card in Markdown: input, size, accuracy in each runtime, latency."""
    from cnnkeras.models import count_macs

    p = meta["preprocessing"]
    params, macs = int(model.count_params()), count_macs(model)
    lines = [
        f"# {name}",
        "",
        f"- input: {p['height']}x{p['width']}x{p['channels']} ({p['color_order']}), "
        f"float = pixel * {p['scale']:.6g} + {p['offset']:g}, resized as {p['resize']}",
        f"- parameters: {params:,}; multiply-accumulates per image: {macs:,}",
    ]
    if meta.get("trained_channels") == 1 and p["channels"] == 3:
        lines.append("- a grey model: the file converts RGB to grey (ITU-R 601 luma) itself")
    if "keras_accuracy" in report:
        lines.append(
            f"- Keras model test accuracy: {report['keras_accuracy']:.4f} "
            f"on {report['test_images']} images ({meta['dataset']}); expected calibration "
            f"error (ECE, 15 bins) {report['keras_ece']:.4f}"
        )
    if "temperature" in meta:
        lines.append(
            f"- scores calibrated: the logits are divided by {meta['temperature']:.4g} inside "
            "the model (temperature scaling fitted on the validation split)"
        )
    lines.append(f"- Keras single-image latency: {report['keras_latency']['median_ms']:.2f} ms")
    lines.append(
        "- metadata inside each .tflite (TFLite Metadata: RGB input, normalisation, labels): "
        "MediaPipe Tasks, the TFLite Task Library and ML Kit read it"
    )
    lines += [
        "",
        "| variant | size | accuracy | agreement with Keras | max output diff | ECE | "
        "accuracy in MediaPipe (phone resize) | CompiledModel vs Interpreter | "
        "median latency | p90 latency |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in report["variants"].items():
        acc, agree, diff, ece = parity_cells(row)
        compiled = row.get("compiled_model_max_diff")
        compiled = f"{compiled:.2g}" if compiled is not None else "-"
        lines.append(
            f"| {variant} | {row['bytes'] / 1024:.0f} KiB | {acc} | {agree} | {diff} | {ece} | "
            f"{_phone_cell(row)} | {compiled} | {row['median_ms']:.3f} ms | "
            f"{row['p90_ms']:.3f} ms |"
        )
    if "int8_repair" in report:
        r = report["int8_repair"]
        lines += ["", f"int8_mixed keeps these layers in float: {', '.join(r['kept_float'])}."]
    if report["warnings"]:
        lines += ["", *(f"**Warning:** {w}" for w in report["warnings"])]
    q = meta["variants"].get("int8")
    if q:
        lines += [
            "",
            f"int8 input: {q['input']['dtype']} with scale {q['input']['scale']:.6g} "
            f"and zero point {q['input']['zero_point']}; output: {q['output']['dtype']} "
            f"with scale {q['output']['scale']:.6g} and zero point "
            f"{q['output']['zero_point']} (real = scale * (q - zero_point)).",
        ]
    return "\n".join([*lines, *_on_a_phone(report, rgb=p["channels"] == 3)]) + "\n"


def _on_a_phone(report: dict, rgb: bool) -> list[str]:
    """What a user does to run the files on a phone, step by step."""
    out = report.get("out", "EXPORT_DIR")
    host = (
        "this folder is the browser app (`index.html`, `runtime/`): copy it to any https "
        "static host and open it on the phone, the live camera included"
        if report.get("web")
        else "`cnnkeras export ... --web` also writes the page into the folder, for any https "
        "static host (the live camera needs https or localhost)"
    )
    return [
        "",
        "## On a phone",
        "",
        f"1. On a computer on the phone's network: `cnnkeras serve {out} --bind 0.0.0.0`.",
        "2. Open the address it prints in the phone's browser; choose photos or take one: the "
        "top classes, with bars, and the latency appear.",
        "3. Press Self-test: every golden image should pass (its scores are the Python runtime's).",
        f"4. To keep it: {host}.",
        "",
        "In an app: MediaPipe Tasks' ImageClassifier takes any `model_*.tflite` here as it is "
        "(resizing, normalisation and labels come from the file); code in tflite/README.md."
        if rgb
        else "In an app: LiteRT runs these files; MediaPipe Tasks takes RGB models only "
        "(export with `--input rgb`, the default); code in tflite/README.md.",
    ]
