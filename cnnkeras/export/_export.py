"""``export_model``: a run's model as TFLite (LiteRT) files for phones, with metadata that
MediaPipe Tasks, the TFLite Task Library and ML Kit read, labels, preprocessing, golden test
inputs, a parity report against the Keras model (in the LiteRT Interpreter, LiteRT's
CompiledModel and MediaPipe's ImageClassifier) and a model card."""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras._files import CARD_FILE, MODEL_FILE, PARITY_FILE
from cnnkeras._litert import VARIANTS, TFLiteModel, convert_variants
from cnnkeras._timing import call_times_ms
from cnnkeras.data import DEFAULT_SEED, load_dataset, make_pipeline
from cnnkeras.errors import UserError
from cnnkeras.evaluate import calibration
from cnnkeras.export._card import model_card
from cnnkeras.export._metadata import ClassifierMetadata, metadata_bytes, populate
from cnnkeras.export._runtimes import (
    KEEP_EVERY_SCORE,
    MEDIAPIPE_MISSING,
    CompiledModelRunner,
    mediapipe_available,
    mediapipe_scores,
)
from cnnkeras.saved import (
    LABELS_FILE,
    PREDICT_BATCH,
    PREPROCESS_FILE,
    SPLITS_FILE,
    load_run_model,
    model_record,
    predict_split,
    recorded_augment,
    run_split_record,
)
from cnnkeras.web import APP_FILES, runtime_files, write_app

# Parity bars: top-1 agreement with Keras on the test split, and int8's accuracy loss.
AGREEMENT_BARS = {"float32": 0.999, "float16": 0.99, "dynamic": 0.99}
INT8_MAX_ACCURACY_LOSS = 0.01
GOLDEN_IMAGES = 5
INPUTS = ("rgb", "as-trained")  # what the exported file takes: RGB frames, or the run's input
DEFAULT_AUTHOR = "cnnkeras"
DEFAULT_LICENSE = "unspecified"
MIXED = "int8_mixed"  # the repaired int8 file: the worst layers kept in float


def representative_sample(split, prep, num_classes: int, samples: int, seed: int):
    """A class-balanced calibration sample of preprocessed images, as the converter wants it.

    The first image gets one black and one white pixel, so that the int8 input's range is the
    whole pixel range: its quantization is then the pixels themselves (uint8 q = pixel), which
    is what MediaPipe and camera code feed an integer model."""
    rng = np.random.default_rng(seed)
    per_class = max(1, samples // num_classes)
    picks = []
    for c in range(num_classes):
        members = np.flatnonzero(split.labels == c)
        picks.extend(rng.choice(members, min(per_class, len(members)), replace=False))
    subset = split.subset(np.sort(np.array(picks)))
    batches = make_pipeline(subset, prep, num_classes, batch_size=1, one_hot=False, cache="none")
    images = [x.numpy() for x, _ in batches]
    if images:
        images[0][0, 0, 0] = prep.offset
        images[0][0, 0, 1] = 255 * prep.scale + prep.offset

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
        "ece": calibration(labels, tflite_scores)["ece"],
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


def _check_text(name: str, value: str) -> None:
    """A metadata field is one line of printable text."""
    if not isinstance(value, str) or not value.isprintable() or len(value) > 200:
        raise UserError(f"`{name}` must be one line of printable text (200 characters at most)")


def _check_options(variants, int_io: str, input: str, author: str, license: str) -> None:
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise UserError(
            f"unknown variant(s) {', '.join(unknown)} in `variants`; choose from "
            f"{', '.join(VARIANTS)}"
        )
    if int_io not in ("uint8", "int8"):
        raise UserError("`int_io` must be uint8 or int8")
    if input not in INPUTS:
        raise UserError(f"`input` must be one of {', '.join(INPUTS)}, got {input!r}")
    _check_text("author", author)
    _check_text("license", license)


def _check_classifier(model, path: Path) -> int:
    """The number of classes of a model whose output is one vector of class scores."""
    shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
    if shape is None or len(shape) != 2 or not shape[1] or shape[1] < 2:
        raise UserError(
            f"`model`: {path} outputs {model.output_shape}, not one vector of class scores; "
            "export writes image-classifier files"
        )
    return int(shape[1])


def _score_test_split(test, prep, in_prep, model, runners: dict):
    """Keras's scores (on ``prep`` input) and every converted model's (on ``in_prep`` input:
    RGB for a grey model exported for phones) on the test split, batch by batch (the split is
    never held in memory), and the positions of the images that decoded."""

    def pipeline(p):
        return make_pipeline(
            test, p, 1, batch_size=PREDICT_BATCH, one_hot=False, cache="none", positions=True
        )

    def batches():  # (Keras input, converted input, positions); the split read once if it can
        if in_prep == prep:
            for x, _, positions in pipeline(prep):
                yield x, x, positions
            return
        for (x, _, positions), (x_in, _, _) in zip(pipeline(prep), pipeline(in_prep), strict=True):
            yield x, x_in, positions

    keras_scores, scores, kept = [], {v: [] for v in runners}, []
    for x, x_in, positions in batches():
        keras_scores.append(np.asarray(model(x.numpy(), training=False)))
        for variant, runner in runners.items():
            scores[variant].append(runner.predict(x_in.numpy()))
        kept.append(positions.numpy())
    if not kept:
        raise UserError(f"none of the {len(test)} test images could be decoded")
    return (
        np.concatenate(keras_scores),
        {v: np.concatenate(s) for v, s in scores.items()},
        np.concatenate(kept),
    )


def _accuracy_of(split, in_prep):
    """A function from .tflite bytes to top-1 accuracy on ``split``."""

    def accuracy(blob: bytes) -> float:
        scores, kept = predict_split(TFLiteModel(blob).predict, split, in_prep)
        return float((scores.argmax(1) == split.labels[kept]).mean())

    return accuracy


def golden_picks(labels: np.ndarray, count: int) -> np.ndarray:
    """Positions of ``count`` images for the self-test, of as many classes as there are: the
    first image of each class (in the split's order), then the first of the rest."""
    _, firsts = np.unique(labels, return_index=True)
    rest = np.setdiff1d(np.arange(len(labels)), firsts)
    return np.concatenate([np.sort(firsts)[:count], rest[: max(0, count - len(firsts))]])


def _golden(out: Path, split, prep, in_prep, model, runners, class_names) -> None:
    """A few test images as PNG with every variant's expected scores, for an app's self-test:
    each as stored (the app resizes it) and at the model's input size (no resizer involved)."""
    from PIL import Image

    from cnnkeras.data import preprocess_images, raw_images, resize_image

    folder = out / "golden"
    folder.mkdir(exist_ok=True)
    cases = []
    picks = golden_picks(split.labels, GOLDEN_IMAGES)
    split = split.subset(picks)
    raws = raw_images(split)
    mode = "RGB" if in_prep.channels == 3 else "L"
    for i, raw in enumerate(raws):
        stored = np.asarray(
            Image.fromarray(raw[..., 0] if raw.shape[-1] == 1 else raw).convert(mode)
        )
        fitted = resize_image(np.atleast_3d(stored).astype(np.float32), in_prep).numpy()
        fitted = np.clip(np.round(fitted), 0, 255).astype(np.uint8).squeeze()
        case = {"label": class_names[int(split.labels[i])]}
        for key, pixels, name in (
            ("", stored, f"{i}.png"),
            ("input_size_", fitted, f"{i}_input_size.png"),
        ):
            with _io.atomic_path(folder / name) as tmp:
                Image.fromarray(pixels).save(tmp, format="PNG")
            x, x_in = preprocess_images([pixels], prep), preprocess_images([pixels], in_prep)
            scores = {"keras": np.asarray(model(x, training=False))[0]}
            scores |= {v: r.predict(x_in)[0] for v, r in runners.items()}
            case[f"{key}image"] = f"golden/{name}"
            case[f"{key}scores"] = {k: [round(float(s), 6) for s in v] for k, v in scores.items()}
        cases.append(case)
    _io.write_json(folder / "expected.json", {"cases": cases})


def _phone_inputs(split) -> list:
    """The test images as an app gets them: the original files (decoded by the runtime), or the
    decoded pixels of a dataset held in memory."""
    from cnnkeras.data import raw_images

    return list(split.paths) if split.paths is not None else raw_images(split)


def _runtime_checks(
    files: dict, runners: dict, test, in_prep, scores: dict, class_names, threshold
) -> dict:
    """Each file in LiteRT's CompiledModel (against the Interpreter) and in MediaPipe's
    ImageClassifier on the test images as stored (resized by MediaPipe), with its top-1
    agreement with the same file on cnnkeras's pipeline (``scores``). A file that carries a
    score ``threshold`` is measured with MediaPipe's threshold overridden."""
    rows = {}
    batch = make_pipeline(test, in_prep, 1, batch_size=PREDICT_BATCH, one_hot=False, cache="none")
    x = next(iter(batch))[0].numpy()
    phone = _phone_inputs(test) if mediapipe_available() else None
    for variant, path in files.items():
        compiled = CompiledModelRunner(path.read_bytes())
        diff = float(np.abs(compiled.predict(x) - runners[variant].predict(x)).max())
        compiled.close()
        row = {"compiled_model_max_diff": diff}
        if phone is None:
            row["phone"] = MEDIAPIPE_MISSING
        elif in_prep.channels != 3:
            row["phone"] = "not measured: MediaPipe Tasks takes RGB models (export --input rgb)"
        else:
            try:
                keep = KEEP_EVERY_SCORE if threshold is not None else None  # scores measured
                seen, names = mediapipe_scores(path, phone, len(class_names), keep)
            except Exception as err:  # MediaPipe says what it refuses; the export stands
                row["phone"] = f"MediaPipe refused the file: {' '.join(str(err).split())}"
                rows[variant] = row
                continue
            top = seen.argmax(1)
            row["phone_accuracy"] = float((top == test.labels).mean())
            row["phone_agreement"] = float((top == scores[variant].argmax(1)).mean())
            # a category scored exactly 0 on every image is not named under a threshold
            row["phone_labels"] = any(names) and all(
                n in ("", c) if keep else n == c for n, c in zip(names, class_names, strict=True)
            )
        rows[variant] = row
    return rows


def export_model(
    model_path: str | Path,
    *,
    variants: str | tuple[str, ...] = ("float32",),
    dataset: str | None = None,
    samples: int = 200,
    out: str | Path | None = None,
    int_io: str = "uint8",
    input: str = "rgb",
    author: str = DEFAULT_AUTHOR,
    license: str = DEFAULT_LICENSE,
    int8_repair: bool = True,
    check_runtimes: bool = True,
    web: bool = False,
    verbose: int = 1,
) -> dict:
    """Convert a saved .keras model; with a dataset, check parity on its test split.

    ``variants``: a tuple of VARIANTS, or a word of ``variants_for`` ('none', 'all', 'int8').
    ``input``: 'rgb' (a grey model converts RGB frames to grey inside the file, so phone
    runtimes take it) or 'as-trained'. ``int8_repair``: when int8 misses its bar, also write
    ``model_int8_mixed.tflite`` with the fewest worst layers in float. ``check_runtimes``: run
    every file in LiteRT's CompiledModel and MediaPipe's ImageClassifier too. ``web``: also
    write the browser app (``cnnkeras serve`` serves it; any static host does too).
    Everything is written to a staging folder first: a refused or failed export leaves ``out``
    as it was."""
    if isinstance(variants, str):
        variants = variants_for(variants)
    _check_options(variants, int_io, input, author, license)
    if web:
        runtime_files()  # installed, or one line on how to install it, before any work
    model_path = Path(model_path)
    model, prep, names, config = load_run_model(model_path)
    num_classes = _check_classifier(model, model_path)
    name = model_path.parent.name if model_path.name == MODEL_FILE else model_path.stem
    out = Path(out) if out else Path("tflite") / name
    _io.check_writable(out)
    rgb = input == "rgb" and prep.channels == 1
    in_prep = dataclasses.replace(prep, channels=3) if rgb else prep
    dataset = dataset or config.get("dataset")
    seed = config.get("seed", DEFAULT_SEED)
    record = run_split_record(model_path)
    data = load_dataset(dataset, seed=seed, record=record, verbose=verbose) if dataset else None
    if data is None and "int8" in variants:
        raise UserError("int8 needs calibration images: pass `dataset`")
    if data is not None and data.num_classes != num_classes:
        raise UserError(
            f"{dataset} has {data.num_classes} classes; the model has {num_classes} outputs"
        )
    class_names = names or (data.class_names if data else [str(i) for i in range(num_classes)])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as err:
        raise UserError(f"`out`: cannot write in {out.parent} ({err.strerror})") from None
    try:
        job = _Export(model, prep, in_prep, class_names, data, staging, verbose)
        report = job.convert(variants, samples, seed, int_io, int8_repair and data is not None)
        meta = _export_record(model_path, in_prep, prep, class_names, dataset, seed, config, job)
        about = ClassifierMetadata.of(
            in_prep,
            name=name,
            description=_description(config.get("arch") or model.name, dataset, report, rgb),
            version=name,
            author=author,
            license=license,
            score_threshold=config.get("score_threshold", {}).get("score"),
        )
        job.write(about, meta, record if data is not None and record else None)
        job.measure(report, out, check_runtimes and data is not None, about.score_threshold)
        report["keras_latency"] = bench_infer(model_path, runs=50)
        if web:
            write_app(staging)
            report["web"] = True
        _io.write_text(staging / CARD_FILE, model_card(name, model, report, meta))
        _io.write_json(staging / PARITY_FILE, report)
        _publish(staging, out)
    except OSError as err:
        raise UserError(f"`out`: cannot write the export in {out} ({err.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for warning in report["warnings"]:
        _io.warn(warning)
    return report


def _export_record(
    model_path: Path, in_prep, prep, class_names, dataset, seed, config: dict, job
) -> dict:
    """preprocess.json: the record schema's shared fields and what an app needs besides."""
    meta = {
        **model_record("export", in_prep, class_names, dataset, seed, recorded_augment(config)),
        "source": str(model_path),
        "layout": "NHWC",
        "input": "pixel * scale + offset, pixel in 0..255, resized to height x width",
        "trained_channels": prep.channels,
        "dataset": dataset,
        "seed": seed,
        "variants": {v: r.quantization for v, r in job.runners.items()},
    }
    if "calibration" in config:  # folded into the model: the scores are calibrated
        meta["temperature"] = config["calibration"]["temperature"]
    if "score_threshold" in config:  # below it, apps answer "unknown"
        meta["score_threshold"] = config["score_threshold"]
    return meta


def _description(arch: str, dataset, report: dict, rgb: bool) -> str:
    text = f"{arch} image classifier"
    if dataset:
        text += f" trained on {dataset}"
    if "keras_accuracy" in report:
        text += f"; test accuracy {report['keras_accuracy']:.4f} on {report['test_images']} images"
    if rgb:
        text += "; takes RGB and converts it to grey (ITU-R 601 luma) inside"
    return text + "; exported by cnnkeras"


OWNED = ("model_*.tflite", "golden", LABELS_FILE, PREPROCESS_FILE, SPLITS_FILE, *APP_FILES)


def _publish(staging: Path, out: Path) -> None:
    """Move a finished export from ``staging`` into ``out``, file by file (each move atomic),
    removing what an earlier export left there that this one did not write."""
    out.mkdir(exist_ok=True)
    made = {p.name for p in staging.iterdir()}
    for pattern in OWNED:
        for old in out.glob(pattern):
            if old.name not in made:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
    for path in staging.iterdir():
        target = out / path.name
        if path.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        path.replace(target)


class _Export:
    """The files of one export, made in a staging folder: conversion, parity on the test split,
    int8 repair, metadata, golden images, then latency and the runtimes apps use."""

    def __init__(self, model, prep, in_prep, class_names, data, folder: Path, verbose: int):
        self.model, self.prep, self.in_prep = model, prep, in_prep
        self.rgb = in_prep.channels != prep.channels
        self.class_names, self.data, self.folder, self.verbose = class_names, data, folder, verbose
        self.blobs: dict[str, bytes] = {}
        self.runners: dict[str, TFLiteModel] = {}
        self.files: dict[str, Path] = {}
        self.test = self.keras_scores = None
        self.scores: dict[str, np.ndarray] = {}  # each file's scores on the test split

    def convert(self, variants, samples: int, seed: int, int_io: str, repair: bool) -> dict:
        """Convert every variant; with data, measure parity and repair int8 if it misses."""
        data, representative = self.data, None
        if data is not None and "int8" in variants:
            train = data.splits["train"]
            representative = representative_sample(
                train, self.in_prep, data.num_classes, samples, seed
            )
        self.blobs = convert_variants(self.model, variants, representative, int_io, self.rgb)
        self.runners = {variant: TFLiteModel(blob) for variant, blob in self.blobs.items()}
        report = {"variants": {}, "warnings": []}
        if data is None:
            return report
        self.keras_scores, self.scores, kept = _score_test_split(
            data.splits["test"], self.prep, self.in_prep, self.model, self.runners
        )
        self.test = test = data.splits["test"].subset(kept)
        keras_accuracy = float((self.keras_scores.argmax(1) == test.labels).mean())
        keras_ece = calibration(test.labels, self.keras_scores)["ece"]
        report.update(keras_accuracy=keras_accuracy, keras_ece=keras_ece, test_images=len(test))
        for variant in variants:
            row = parity(self.keras_scores, self.scores[variant], test.labels)
            report["variants"][variant] = row
            warning = _check_bar(variant, row, keras_accuracy)
            if warning and variant == "int8" and repair:
                warning += self._repair(representative, keras_accuracy, report)
            if warning:
                report["warnings"].append(warning)
        return report

    def _repair(self, representative, keras_accuracy: float, report: dict) -> str:
        """Add the repaired int8 file (MIXED) to the export; what the warning should add."""
        from cnnkeras.export._repair import repair_int8

        split = self.data.splits["val"] if len(self.data.splits["val"]) else self.test
        _io.log(self.verbose, "int8 misses its bar: finding the layers responsible")
        if split is not self.test:  # the bar, on the split the search runs on
            scores, kept = predict_split(self.model, split, self.prep)
            keras_accuracy = float((scores.argmax(1) == split.labels[kept]).mean())
        target = keras_accuracy - INT8_MAX_ACCURACY_LOSS
        accuracy = _accuracy_of(split, self.in_prep)
        found = repair_int8(self.model, representative, accuracy, target, self.rgb)
        if found is None:
            return f"; no {MIXED} file: no mix of float and int8 layers reached the bar"
        self.blobs[MIXED] = found.pop("blob")
        self.runners[MIXED] = TFLiteModel(self.blobs[MIXED])
        report["int8_repair"] = {
            **found,
            "searched_on": "val" if split is not self.test else "test",
        }
        self.scores[MIXED] = predict_split(self.runners[MIXED].predict, self.test, self.in_prep)[0]
        report["variants"][MIXED] = parity(self.keras_scores, self.scores[MIXED], self.test.labels)
        kept, row = len(found["kept_float"]), report["variants"][MIXED]
        loss = report["keras_accuracy"] - row["accuracy"]
        text = f"; {MIXED}.tflite keeps {kept} layer(s) in float and loses {100 * loss:.1f}"
        return text + (" points" if loss <= INT8_MAX_ACCURACY_LOSS else " points on the test split")

    def write(self, about: ClassifierMetadata, meta: dict, split_record: dict | None) -> None:
        """The .tflite files with their metadata inside, labels, records and golden images."""
        # what apps show: a name's bytes that are not UTF-8 become U+FFFD (labels.txt beside
        # the files keeps them as they were)
        labels = ("\n".join(map(_io.shown, self.class_names)) + "\n").encode()
        for variant, blob in self.blobs.items():
            path = self.folder / f"model_{variant}.tflite"
            _io.write_bytes(path, populate(blob, metadata_bytes(about), {LABELS_FILE: labels}))
            self.files[variant] = path
            size = path.stat().st_size / 1024
            _io.log(self.verbose, f"wrote model_{variant}.tflite ({size:.0f} KiB)")
        _io.write_text(self.folder / LABELS_FILE, "\n".join(self.class_names) + "\n")
        if split_record and split_record["spec"] == self.data.spec:
            _io.write_json(self.folder / SPLITS_FILE, split_record)  # evaluate sees the split
        _io.write_json(self.folder / PREPROCESS_FILE, meta)
        if self.test is not None:
            _golden(
                self.folder,
                self.test,
                self.prep,
                self.in_prep,
                self.model,
                self.runners,
                self.class_names,
            )

    def measure(self, report: dict, out: Path, runtimes: bool, threshold=None) -> None:
        """Size and latency of each file; with ``runtimes``, CompiledModel and MediaPipe
        (``threshold``: the score threshold the files carry, if any)."""
        for variant, path in self.files.items():
            row = report["variants"].setdefault(variant, {})
            row.update(bench_infer(path, runs=50), model=str(out / path.name))
            row.update(file=str(out / path.name), bytes=path.stat().st_size)
        sizes = {v: row["bytes"] for v, row in report["variants"].items()}
        if "float32" in sizes and "int8" in sizes:
            report["int8_size_ratio"] = sizes["int8"] / sizes["float32"]
        if runtimes:
            checks = _runtime_checks(
                self.files,
                self.runners,
                self.test,
                self.in_prep,
                self.scores,
                self.class_names,
                threshold,
            )
            for variant, row in checks.items():
                report["variants"][variant].update(row)
        report["out"] = str(out)


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
