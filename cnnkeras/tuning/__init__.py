"""Keras Tuner searches over the zoo: experiments, hypermodels that call ``create_model``,
results tables and plots, resume after a kill, failed trials, and distributed search."""

from cnnkeras.tuning._experiment import (
    MEMORY_GROWTH_MB,
    SEARCH_SPACES,
    TUNERS,
    Experiment,
    load_experiment,
)
from cnnkeras.tuning._search import ZooHyperModel, retrain_best, run_search, write_results

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
