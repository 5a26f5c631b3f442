"""A saved model's report on a split of its dataset (or another)."""

from __future__ import annotations

from pathlib import Path

from cnnkeras import _io
from cnnkeras._files import CURVES_FILE
from cnnkeras.data import SplitImages, every_image, load_dataset
from cnnkeras.errors import UserError
from cnnkeras.evaluate._errors import NO_CAM_TFLITE
from cnnkeras.evaluate._metrics import tta_metrics
from cnnkeras.evaluate._report import write_report
from cnnkeras.evaluate._unknown import confident_unknowns_png, open_set
from cnnkeras.saved import Predictor, predict_split, run_split_record


def evaluate_model(
    model_path: str | Path,
    dataset: str | None = None,
    *,
    split: str = "test",
    out: str | Path | None = None,
    seed: int | None = None,
    top_losses: int = 16,
    tta: bool = False,
    unknown: str | None = None,
) -> dict:
    """Evaluate a saved .keras or .tflite model on a dataset split; write the report.

    Without ``dataset``, the one recorded beside the model (config.json, preprocess.json).
    With ``tta``, the report gives the metrics of test-time augmentation beside the plain
    ones (``metrics["tta"]``); the rest of the report is the plain model's. ``unknown``: a
    dataset of none of the model's classes, every image of which is scored to measure how
    the top score separates them from the split's (``metrics["unknown"]``)."""
    if top_losses < 0:
        raise UserError("`top_losses` must be >= 0")
    predictor = Predictor(model_path)
    dataset = dataset or predictor.dataset
    if dataset is None:
        raise UserError("no config.json or preprocess.json beside the model; pass `dataset`")
    seed = seed if seed is not None else predictor.seed
    data = load_dataset(dataset, seed=seed, record=run_split_record(model_path), verbose=1)
    _check_fits(predictor, data, dataset, split)
    chosen = data.splits[split]
    scores, kept = predict_split(predictor, chosen, predictor.prep)
    out = Path(out) if out else Path(model_path).parent / f"eval-{data.name}-{split}"
    title = f"{Path(model_path).name} on {dataset} ({split} split)"
    extra = {
        "model": str(model_path),
        "dataset": dataset,
        "split": split,
        "report_dir": str(out),
        "decode_failures": len(chosen) - len(kept),
    }
    if tta:
        averaged = predictor.with_tta()
        tta_scores, _ = predict_split(averaged, chosen.subset(kept), predictor.prep)
        extra["tta"] = tta_metrics(chosen.labels[kept], tta_scores, data.class_names)
        extra["tta"]["copies"] = averaged.names
    scaling = predictor.meta.get("calibration")
    if scaling and split == "test" and dataset == predictor.dataset:  # what training measured
        extra["temperature_scaling"] = scaling
    figures = {}
    if unknown:
        extra["unknown"], figures["confident_unknowns.png"] = _unknowns(
            predictor, unknown, seed, scores, data.class_names
        )
    images = SplitImages(chosen.subset(kept), predictor.prep)
    curves = Path(model_path).parent / CURVES_FILE  # beside a run's model
    return write_report(
        out,
        chosen.labels[kept],
        scores,
        data.class_names,
        images=images,
        title=title,
        extra=extra,
        model=predictor.keras_model,
        cam_note=None if predictor.keras_model is not None else NO_CAM_TFLITE,
        top_losses=top_losses,
        about={"model": str(model_path), "data": f"{dataset}, {split} split ({len(kept)} images)"},
        curves=curves.read_bytes() if curves.is_file() else None,
        figures=figures,
    )


def _check_fits(predictor: Predictor, data, dataset: str, split: str) -> None:
    """Refuse a split the model cannot be measured on: unknown, or of other classes."""
    if split not in data.splits:
        raise UserError(f"unknown split {split!r}; choose train, val or test")
    if predictor.num_outputs != data.num_classes:
        raise UserError(
            f"the model has {predictor.num_outputs} outputs but {dataset} has "
            f"{data.num_classes} classes"
        )
    names = predictor.class_names
    if names is not None and names != data.class_names:
        raise UserError(
            f"the model's labels.txt ({', '.join(names[:5])}...) differs from {dataset}'s classes"
        )


def _unknowns(predictor: Predictor, spec: str, seed, scores, class_names) -> tuple[dict, bytes]:
    """How the top score separates ``spec``'s images (of none of the classes) from the
    split's ``scores``, and the unknown images the model was surest of."""
    other = every_image(load_dataset(spec, seed=seed, verbose=1))
    u_scores, u_kept = predict_split(predictor, other, predictor.prep)
    found = {"spec": spec, **open_set(scores, u_scores, predictor.score_threshold)}
    u_images = SplitImages(other.subset(u_kept), predictor.prep)
    png = confident_unknowns_png(u_images, u_scores, [_io.shown(n) for n in class_names])
    return found, png
