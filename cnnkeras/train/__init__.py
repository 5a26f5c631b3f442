"""Training with ``model.fit``: run folders, callbacks, atomic checkpoints and resume.

A run folder holds everything needed to continue, evaluate or ship a model:
``config.json`` (every option, preprocessing, classes, library versions), ``model.keras``
(the best epoch on the validation metric), ``labels.txt``, ``history.csv``,
``training_curves.png``, TensorBoard ``logs/`` and the test-split evaluation report.
"""

from cnnkeras._launch import launch
from cnnkeras.train._callbacks import (
    PRECISE_BN_BATCHES,
    AveragedWeights,
    PreciseBatchNorm,
    trainable_batch_norms,
)
from cnnkeras.train._config import LOSSES, OPTIMIZERS, Recipe, TrainConfig
from cnnkeras.train._distribute import (
    DISTRIBUTE,
    make_strategy,
    replicas,
    single_process,
    synchronize_batch_norm,
)
from cnnkeras.train._finetune import (
    FinetuneConfig,
    build_transfer_model,
    feature_extractor,
    finetune,
    resume,
    set_trainable,
)
from cnnkeras.train._fitdata import FitData, fit_callbacks, fit_pipelines
from cnnkeras.train._kernels import onednn_on, refuse_wrong_gradients
from cnnkeras.train._lr_find import LR_FIND_STEPS, LRFinding, lr_find, lr_range_test
from cnnkeras.train._optim import compile_for_training
from cnnkeras.train._plan import SCHEDULES, TrainingPlan, execution_plan, plan_training
from cnnkeras.train._precision import POLICIES, PRECISIONS, build_in_precision
from cnnkeras.train._preview import preview
from cnnkeras.train._run import train
from cnnkeras.train._setup import plan_run, prepare, preprocessing_for, seed_everything

# the API: train, resume, finetune, lr_find, their configs and what they return
__all__ = [
    "LOSSES",
    "LR_FIND_STEPS",
    "OPTIMIZERS",
    "PRECISE_BN_BATCHES",
    "PRECISIONS",
    "SCHEDULES",
    "FinetuneConfig",
    "LRFinding",
    "PreciseBatchNorm",
    "Recipe",
    "TrainConfig",
    "TrainingPlan",
    "finetune",
    "launch",
    "lr_find",
    "lr_range_test",
    "plan_training",
    "preview",
    "resume",
    "train",
]
# the steps of a run, for what trains as a run does (the tuner's trials, bench, compare, demos)
__all__ += [
    "DISTRIBUTE",
    "POLICIES",
    "AveragedWeights",
    "FitData",
    "build_in_precision",
    "build_transfer_model",
    "compile_for_training",
    "execution_plan",
    "feature_extractor",
    "fit_callbacks",
    "fit_pipelines",
    "make_strategy",
    "onednn_on",
    "plan_run",
    "prepare",
    "preprocessing_for",
    "refuse_wrong_gradients",
    "replicas",
    "seed_everything",
    "set_trainable",
    "single_process",
    "synchronize_batch_norm",
    "trainable_batch_norms",
]
