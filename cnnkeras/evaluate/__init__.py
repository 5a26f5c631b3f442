"""Evaluation with scikit-learn: metrics, plots and reports for a model on a dataset split."""

from cnnkeras.evaluate._calibration import calibration, fit_temperature, nll, threshold_for
from cnnkeras.evaluate._evaluate import evaluate_model
from cnnkeras.evaluate._metrics import compute_metrics
from cnnkeras.evaluate._plots import training_curves_png
from cnnkeras.evaluate._report import summary_lines, write_report
from cnnkeras.saved import Predictor, load_run_model, predict_split, run_split_record

__all__ = [
    "Predictor",  # these four live in cnnkeras.saved; re-exported where they were first
    "calibration",
    "compute_metrics",
    "evaluate_model",
    "fit_temperature",
    "load_run_model",
    "nll",
    "predict_split",
    "run_split_record",
    "summary_lines",
    "threshold_for",
    "training_curves_png",
    "write_report",
]
