"""Evaluation with scikit-learn: metrics, plots and reports for a model on a dataset split."""

from cnnkeras.evaluate._evaluate import evaluate_model
from cnnkeras.evaluate._metrics import compute_metrics
from cnnkeras.evaluate._report import summary_lines, write_report
from cnnkeras.saved import Predictor, load_run_model, predict_split, run_split_record

__all__ = [
    "Predictor",  # these four live in cnnkeras.saved; re-exported where they were first
    "compute_metrics",
    "evaluate_model",
    "load_run_model",
    "predict_split",
    "run_split_record",
    "summary_lines",
    "write_report",
]
