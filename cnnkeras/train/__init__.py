"""Training with ``model.fit``: run folders, callbacks, atomic checkpoints and resume.

A run folder holds everything needed to continue, evaluate or ship a model:
``config.json`` (every option, preprocessing, classes, library versions), ``model.keras``
(the best epoch on the validation metric), ``labels.txt``, ``history.csv``,
``training_curves.png``, TensorBoard ``logs/`` and the test-split evaluation report.
"""

from cnnkeras._launch import launch
from cnnkeras.train._callbacks import PreciseBatchNorm
from cnnkeras.train._config import LOSSES, OPTIMIZERS, TrainConfig
from cnnkeras.train._finetune import FinetuneConfig, finetune, resume
from cnnkeras.train._lr_find import LRFinding, find_lr
from cnnkeras.train._plan import SCHEDULES, TrainingPlan, plan_training
from cnnkeras.train._run import lr_find, train
from cnnkeras.train._transfer_demo import demo_table, transfer_demo

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "FinetuneConfig",
    "LRFinding",
    "PreciseBatchNorm",
    "TrainConfig",
    "TrainingPlan",
    "demo_table",
    "find_lr",
    "finetune",
    "launch",
    "lr_find",
    "plan_training",
    "resume",
    "train",
    "transfer_demo",
]
