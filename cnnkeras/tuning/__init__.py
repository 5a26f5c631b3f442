"""Keras Tuner searches over the zoo: experiments, hypermodels that call ``create_model``,
results tables and plots, resume after a kill, failed trials, and distributed search."""

from cnnkeras.tuning._experiment import (
    MEMORY_GROWTH_MB,
    SEARCH_SPACES,
    TUNERS,
    Experiment,
    load_experiment,
)
from cnnkeras.tuning._hypermodel import ZooHyperModel
from cnnkeras.tuning._processes import run_search
from cnnkeras.tuning._results import retrain_best, write_results

__all__ = [
    "MEMORY_GROWTH_MB",
    "SEARCH_SPACES",
    "TUNERS",
    "Experiment",
    "ZooHyperModel",
    "load_experiment",
    "retrain_best",
    "run_search",
    "write_results",
]
