"""``export_model``: a run's model as TFLite (LiteRT) files for phones, with labels,
preprocessing, golden test inputs, a parity report against the Keras model and a model card."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras._litert import VARIANTS, TFLiteModel, convert
from cnnkeras._timing import call_times_ms
from cnnkeras.data import DEFAULT_SEED, load_dataset, make_pipeline
from cnnkeras.errors import UserError
from cnnkeras.saved import (
    LABELS_FILE,
    PREDICT_BATCH,
    PREPROCESS_FILE,
    SPLITS_FILE,
    load_run_model,
    model_record,
    recorded_augment,
    run_split_record,
)

# Parity bars: top-1 agreement with Keras on the test split, and int8's accuracy loss.
AGREEMENT_BARS = {"float32": 0.999, "float16": 0.99, "dynamic": 0.99}
INT8_MAX_ACCURACY_LOSS = 0.01
GOLDEN_IMAGES = 5


def representative_sample(split, prep, num_classes: int, samples: int, seed: int):
    """A class-balanced calibration sample of preprocessed images, as the converter wants it."""
    rng = np.random.default_rng(seed)
    per_class = max(1, samples // num_classes)
    picks = []
    for c in range(num_classes):
        members = np.flatnonzero(split.labels == c)
        picks.extend(rng.choice(members, min(per_class, len(members)), replace=False))
    subset = split.subset(np.sort(np.array(picks)))
    batches = make_pipeline(subset, prep, num_classes, batch_size=1, one_hot=False, cache="none")
    images = [x.numpy() for x, _ in batches]

    def generate():
        for image in images:
            yield [image.astype(np.float32)]

    return generate


def parity(keras_scores, tflite_scores, labels) -> dict:
    """How closely a converted model gives the Keras model's answers."""
    from sklearn.metrics import f1_score

    k_top, t_top = keras_scores.argmax(1), tflite_scores.argmax(1)
    return {
        "agreement": float((k_top == t_top).mean()),
        "accuracy": float((t_top == labels).mean()),
        "macro_f1": float(f1_score(labels, t_top, average="macro", zero_division=0)),
        "max_abs_diff": float(np.abs(keras_scores - tflite_scores).max()),
    }


def bench_infer(path: str | Path, threads: int | None = None, runs: int = 100) -> dict:
    """Single-image latency of a .tflite file (LiteRT, XNNPACK) or a .keras model."""
    path = Path(path)
    if runs < 1:
        raise UserError("`runs` must be >= 1")
    if path.suffix == ".tflite":
        model = TFLiteModel(path, num_threads=threads)
        dtype = model.input["dtype"]
        x = np.zeros(tuple(model.input["shape"]), dtype)

        def step():
            model.invoke_raw(x)

        kind = "LiteRT interpreter (XNNPACK)"
    else:
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
            except RuntimeError:  # TensorFlow already started: its thread pool is fixed
                threads = None
        keras_model = load_run_model(path)[0]
        call = tf.function(lambda t: keras_model(t, training=False))
        x = tf.zeros((1, *keras_model.input_shape[1:]))

        def step():
            call(x).numpy()

        kind = "Keras model in a tf.function"
    times = call_times_ms(step, runs)
    median = statistics.median(times)
    return {
        "model": str(path),
        "runtime": kind,
        "threads": threads,
        "runs": runs,
        "median_ms": median,
        "p90_ms": times[min(len(times) - 1, int(0.9 * len(times)))],
        "images_per_sec": 1000.0 / median,
        "file_bytes": path.stat().st_size,
    }


def _golden(out: Path, split, prep, keras_scores, variant_scores, class_names) -> None:
    """A few test images as PNG with every variant's expected scores, for an app's self-test.

    ``split`` holds the test images that were scored, in the order of the score rows."""
    from PIL import Image

    from cnnkeras.data._pipeline import raw_images

    folder = out / "golden"
    folder.mkdir(exist_ok=True)
    cases = []
    raws = raw_images(split.subset(np.arange(min(GOLDEN_IMAGES, len(split)))))
    for i, raw in enumerate(raws):
        image = Image.fromarray(raw[..., 0] if raw.shape[-1] == 1 else raw)
        image = image.convert("RGB" if prep.channels == 3 else "L")
        with _io.atomic_path(folder / f"{i}.png") as tmp:
            image.save(tmp, format="PNG")
        cases.append(
            {
                "image": f"golden/{i}.png",
                "label": class_names[int(split.labels[i])],
                "keras": [round(float(v), 6) for v in keras_scores[i]],
                **{v: [round(float(s), 6) for s in sc[i]] for v, sc in variant_scores.items()},
            }
        )
    _io.write_json(folder / "expected.json", {"cases": cases})


def _score_test_split(test, prep, model, runners: dict) -> tuple[np.ndarray, dict, np.ndarray]:
    """Keras and every converted model's scores on the test split, batch by batch (the split
    is never held in memory), and the positions of the images that decoded."""
    ds = make_pipeline(
        test, prep, 1, batch_size=PREDICT_BATCH, one_hot=False, cache="none", positions=True
    )
    keras_scores, scores, kept = [], {v: [] for v in runners}, []
    for x, _, positions in ds:
        x = x.numpy()
        keras_scores.append(np.asarray(model(x, training=False)))
        for variant, runner in runners.items():
            scores[variant].append(runner.predict(x))
        kept.append(positions.numpy())
    if not kept:
        raise UserError(f"none of the {len(test)} test images could be decoded")
    return (
        np.concatenate(keras_scores),
        {v: np.concatenate(s) for v, s in scores.items()},
        np.concatenate(kept),
    )


def variants_for(quantize: str) -> tuple[str, ...]:
    """The files a quantization word asks for: 'none' (float32), 'all', or float32 plus one
    of float16, dynamic, int8."""
    words = {"none": ("float32",), "all": VARIANTS}
    if quantize in words:
        return words[quantize]
    if quantize not in VARIANTS:
        raise UserError(
            f"`quantize` must be none, all or one of {', '.join(VARIANTS)}, got {quantize!r}"
        )
    return ("float32", quantize)


def export_model(
    model_path: str | Path,
    *,
    variants: str | tuple[str, ...] = ("float32",),
    dataset: str | None = None,
    samples: int = 200,
    out: str | Path | None = None,
    int_io: str = "uint8",
    verbose: int = 1,
) -> dict:
    """Convert a saved .keras model; with a dataset, check parity on its test split.

    ``variants``: a tuple of VARIANTS, or a word of ``variants_for`` ('none', 'all', 'int8')."""
    from cnnkeras.models import count_macs

    if isinstance(variants, str):
        variants = variants_for(variants)
    model_path = Path(model_path)
    model, prep, names, config = load_run_model(model_path)
    name = model_path.parent.name if model_path.name == "model.keras" else model_path.stem
    out = Path(out) if out else Path("tflite") / name
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise UserError(
            f"unknown variant(s) {', '.join(unknown)} in `variants`; choose from "
            f"{', '.join(VARIANTS)}"
        )
    if int_io not in ("uint8", "int8"):
        raise UserError("`int_io` must be uint8 or int8")
    dataset = dataset or config.get("dataset")
    seed = config.get("seed", DEFAULT_SEED)
    record = run_split_record(model_path)
    data = load_dataset(dataset, seed=seed, record=record, verbose=verbose) if dataset else None
    if data is None and "int8" in variants:
        raise UserError("int8 needs calibration images: pass `dataset`")
    if data is not None and data.num_classes != model.output_shape[-1]:
        raise UserError(
            f"{dataset} has {data.num_classes} classes; the model has "
            f"{model.output_shape[-1]} outputs"
        )
    class_names = names or (data.class_names if data else None)
    out.mkdir(parents=True, exist_ok=True)
    representative = (
        representative_sample(data.splits["train"], prep, data.num_classes, samples, seed)
        if data is not None and "int8" in variants
        else None
    )
    files, quant, runners = {}, {}, {}
    for variant in variants:
        blob = convert(model, variant, representative, int_io)
        path = out / f"model_{variant}.tflite"
        _io.write_bytes(path, blob)
        runners[variant] = TFLiteModel(blob)
        files[variant] = path
        quant[variant] = runners[variant].quantization
        _io.log(verbose, f"wrote {path} ({len(blob) / 1024:.0f} KiB)")
    if data is not None:
        test = data.splits["test"]
        keras_scores, scores, kept = _score_test_split(test, prep, model, runners)
        test = test.subset(kept)
    if class_names:
        _io.write_text(out / LABELS_FILE, "\n".join(class_names) + "\n")
    if record and data is not None and record["spec"] == data.spec:
        _io.write_json(out / SPLITS_FILE, record)  # evaluate of a .tflite sees the same split
    meta = {
        **model_record("export", prep, class_names, dataset, seed, recorded_augment(config)),
        "source": str(model_path),
        "layout": "NHWC",
        "input": "pixel * scale + offset, pixel in 0..255, resized to height x width",
        "dataset": dataset,
        "seed": seed,
        "variants": quant,
    }
    _io.write_json(out / PREPROCESS_FILE, meta)
    report = {"model": str(model_path), "out": str(out), "variants": {}, "warnings": []}
    keras_accuracy = None
    if data is not None:
        keras_accuracy = float((keras_scores.argmax(1) == test.labels).mean())
        report["keras_accuracy"] = keras_accuracy
        report["test_images"] = len(test)
        _golden(out, test, prep, keras_scores, scores, data.class_names)
    for variant in variants:
        row = {"file": str(files[variant]), "bytes": files[variant].stat().st_size}
        row.update(bench_infer(files[variant], runs=50))
        if data is not None:
            row.update(parity(keras_scores, scores[variant], test.labels))
            warning = _check_bar(variant, row, keras_accuracy)
            if warning:
                report["warnings"].append(warning)
        report["variants"][variant] = row
    report["keras_latency"] = bench_infer(model_path, runs=50)
    sizes = {variant: row["bytes"] for variant, row in report["variants"].items()}
    if "float32" in sizes and "int8" in sizes:
        report["int8_size_ratio"] = sizes["int8"] / sizes["float32"]
    params, macs = int(model.count_params()), count_macs(model)
    _io.write_text(out / "model_card.md", _model_card(name, model, params, macs, report, meta))
    _io.write_json(out / "parity.json", report)
    for warning in report["warnings"]:
        _io.warn(warning)
    return report


def parity_cells(row: dict) -> tuple[str, str, str]:
    """Accuracy, agreement and max output difference of a report row as table cells ("-"
    without a dataset)."""
    return (
        f"{row['accuracy']:.4f}" if "accuracy" in row else "-",
        f"{100 * row['agreement']:.2f}%" if "agreement" in row else "-",
        f"{row['max_abs_diff']:.4f}" if "max_abs_diff" in row else "-",
    )


def export_text(report: dict) -> str:
    """An ``export_model`` report as the table ``cnnkeras export`` prints."""
    lines = []
    if "keras_accuracy" in report:
        lines.append(
            f"Keras model: accuracy {report['keras_accuracy']:.4f} on "
            f"{report['test_images']} test images"
        )
    lines.append(
        f"{'variant':<9}{'KiB':>8}{'accuracy':>10}{'agreement':>11}{'max diff':>10}{'ms':>8}"
    )
    for variant, r in report["variants"].items():
        acc, agree, diff = parity_cells(r)
        lines.append(
            f"{variant:<9}{r['bytes'] / 1024:>8.0f}{acc:>10}{agree:>11}{diff:>10}"
            f"{r['median_ms']:>8.3f}"
        )
    lines.append(f"files: {report['out']}")
    return "\n".join(lines)


def bench_infer_text(r: dict) -> str:
    """A ``bench_infer`` result in one line."""
    return (
        f"{r['model']} ({r['runtime']}, {r['file_bytes'] / 1024:.0f} KiB): median "
        f"{r['median_ms']:.3f} ms, p90 {r['p90_ms']:.3f} ms, {r['images_per_sec']:,.0f} images/s"
    )


def _check_bar(variant: str, row: dict, keras_accuracy: float) -> str | None:
    if variant == "int8":
        loss = keras_accuracy - row["accuracy"]
        if loss > INT8_MAX_ACCURACY_LOSS:
            return (
                f"int8 loses {100 * loss:.1f} points of accuracy (bar: 1.0); use the "
                "float16 or dynamic file, or calibrate with more `samples`"
            )
        return None
    bar = AGREEMENT_BARS[variant]
    if row["agreement"] < bar:
        return (
            f"{variant} agrees with Keras on {100 * row['agreement']:.2f}% of test images "
            f"(bar: {100 * bar:.1f}%)"
        )
    return None


def _model_card(name, model, params, macs, report, meta) -> str:
    p = meta["preprocessing"]
    lines = [
        f"# {name}",
        "",
        f"- input: {p['height']}x{p['width']}x{p['channels']} ({p['color_order']}), "
        f"float = pixel * {p['scale']:.6g} + {p['offset']:g}",
        f"- parameters: {params:,}; multiply-accumulates per image: {macs:,}",
    ]
    if "keras_accuracy" in report:
        lines.append(
            f"- Keras model test accuracy: {report['keras_accuracy']:.4f} "
            f"on {report['test_images']} images ({meta['dataset']})"
        )
    lines.append(f"- Keras single-image latency: {report['keras_latency']['median_ms']:.2f} ms")
    lines += [
        "",
        "| variant | size | accuracy | agreement with Keras | max output diff | "
        "median latency | p90 latency |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, row in report["variants"].items():
        acc, agree, diff = parity_cells(row)
        lines.append(
            f"| {variant} | {row['bytes'] / 1024:.0f} KiB | {acc} | {agree} | {diff} | "
            f"{row['median_ms']:.3f} ms | {row['p90_ms']:.3f} ms |"
        )
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
    return "\n".join(lines) + "\n"
