"""The end of a run: training curves, the float32 best model, its confidence, the test-split
report and the final config.json; the run's scratch files go.

A multi-host run ends here in a child process on the TensorFlow backend (its Grad-CAM takes
gradients with TensorFlow's tape), from the run folder alone, as ``resume`` would read it; that
also shows that the model JAX trained loads under TensorFlow."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from cnnkeras import _io
from cnnkeras._files import (
    CACHE_DIR,
    CHECKPOINTS,
    CONFIG_FILE,
    CURVES_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    REPORT_FILE,
)
from cnnkeras.data import CHECK_FILE, CHECK_PAGE, Preprocessing, SplitImages
from cnnkeras.errors import UserError
from cnnkeras.evaluate import training_curves_png, write_report
from cnnkeras.saved import predict_split
from cnnkeras.train import _precision
from cnnkeras.train._calibrate import confidence_lines, confident_best
from cnnkeras.train._callbacks import MONITOR, score
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._folder import Run, report_title
from cnnkeras.train._history import read_history
from cnnkeras.train._plan import TrainingPlan
from cnnkeras.train._setup import load_data
from cnnkeras.train._verdict import learned_nothing


def finish_run(run: Run, *, status: str, seconds: float, verbose: int) -> dict:
    """Training curves, the test-split report of the best model, and the final config.json."""
    data, prep, plan, folder = run.data, run.prep, run.plan, run.folder
    rows = read_history(folder / HISTORY_FILE)
    if not (folder / MODEL_FILE).is_file():
        raise UserError(f"training stopped before any epoch completed ({status}); try a lower `lr`")
    history = {k: [r[k] for r in rows] for k in (rows[0] if rows else {})}
    curves = training_curves_png(history)
    _io.write_bytes(folder / CURVES_FILE, curves)
    if plan.precision != "float32":  # reports and exports: a float32 model
        _precision.save_float32(folder / MODEL_FILE)
    best, confidence = confident_best(folder, run.config, data, prep)
    warning = learned_nothing(rows, data.splits["val"].labels, data.num_classes, plan)
    test = data.splits["test"]
    scores, kept = predict_split(best, test, prep)
    if len(kept) < len(test):
        _io.log(verbose, f"{len(test) - len(kept)} test image(s) failed to decode; left out")
    metrics = write_report(
        folder,
        test.labels[kept],
        scores,
        data.class_names,
        images=SplitImages(test.subset(kept), prep),
        title=run.title,
        model=best,
        about=_about(run, len(rows), status, warning),
        curves=curves,
        extra=confidence,
    )
    best_i = max(range(len(rows)), key=lambda i: score(rows[i])) if rows else -1
    result = {
        "run_dir": str(folder),
        "status": status,
        "epochs_run": len(rows),
        "best_epoch": best_i + 1,
        "val_accuracy": rows[best_i][MONITOR] if rows else 0.0,
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["f1"]["macro"],
        "test_mAP": metrics["mAP"],
        "fit_seconds": round(seconds, 2),
    }
    if warning:
        result["learned_nothing"] = warning
        _io.log(verbose, f"warning: {warning['message']}")
    if "temperature_scaling" in confidence:
        result["temperature"] = confidence["temperature_scaling"]["temperature"]
    for line in confidence_lines(confidence, metrics["calibration"]["ece"]):
        _io.log(verbose, line)
    _final_record(run, status, result, confidence)
    _io.log(
        verbose,
        f"test accuracy {result['test_accuracy']:.4f} (macro F1 "
        f"{result['test_macro_f1']:.4f}, mAP {result['test_mAP']:.4f}); "
        f"report: {folder / REPORT_FILE}",
    )
    return result


def _about(run: Run, epochs: int, status: str, warning: dict | None) -> dict[str, str]:
    """What opens the run's report: the model, the data, the training, and any warning."""
    record, folder = run.record, run.folder
    about = {
        "model": f"{record.get('arch')} ({record.get('params', 0):,} parameters), {folder}",
        "data": f"{record.get('dataset')}: "
        + ", ".join(f"{n} {k}" for k, n in record.get("splits", {}).items())
        + " images",
        "training": f"{epochs} epochs ({status})",
    }
    if warning:
        about["warning"] = warning["message"]
    checked = _io.read_json(folder / CHECK_FILE)
    if checked:
        about["data check"] = f"{checked['summary'].removeprefix('data check: ')} ({CHECK_PAGE})"
    return about


def _final_record(run: Run, status: str, result: dict, confidence: dict) -> None:
    """config.json with the run's status, result and confidence; the scratch files go."""
    folder = run.folder
    record = {**_io.read_json(folder / CONFIG_FILE), **run.record}
    record.update(status=status, result=result)
    if "temperature_scaling" in confidence:
        record["calibration"] = confidence["temperature_scaling"]
    if "score_threshold" in confidence:
        record["score_threshold"] = confidence["score_threshold"]
    _io.write_json(folder / CONFIG_FILE, record)
    shutil.rmtree(folder / CHECKPOINTS, ignore_errors=True)
    shutil.rmtree(folder / CACHE_DIR, ignore_errors=True)


def main(argv: list[str]) -> int:
    """``python -m cnnkeras.train._finish RUN_DIR STATUS SECONDS VERBOSE``: the report of a
    multi-host run (``_multihost.finish_in_tensorflow``), its result as the last line."""
    folder, status, seconds, verbose = Path(argv[0]), argv[1], float(argv[2]), int(argv[3])
    record = _io.read_json(folder / CONFIG_FILE)
    config = TrainConfig.from_record(record)
    data = load_data(config, folder, verbose=0)
    prep = Preprocessing.from_dict(record["preprocessing"])
    plan = TrainingPlan.from_dict(record["plan"])
    run = Run(folder, config, plan, data, prep, None, record, report_title(config))
    result = finish_run(run, status=status, seconds=seconds, verbose=verbose)
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
