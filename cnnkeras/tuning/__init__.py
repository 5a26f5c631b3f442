"""Keras Tuner searches over the zoo: experiments, hypermodels that call ``create_model``,
results tables and plots, resume after a kill, failed trials, and distributed search."""

from cnnkeras.tuning._experiment import SEARCH_SPACES, Experiment, load_experiment
from cnnkeras.tuning._search import ZooHyperModel, run_search, write_results

__all__ = [
    "SEARCH_SPACES",
    "Experiment",
    "ZooHyperModel",
    "load_experiment",
    "run_search",
    "write_results",
]
