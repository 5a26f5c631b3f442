"""How a run learns: the optimizer (with the plan's schedule and weight average), the loss and
the metrics, compiled the one way ``train``, ``finetune``, ``lr-find``, the tuner's trials and
``bench train`` share."""

from __future__ import annotations

import keras

from cnnkeras._keras_internals import build_training_state
from cnnkeras.train._callbacks import learning_rate, warm_up_average
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import model_scope
from cnnkeras.train._kernels import refuse_wrong_gradients
from cnnkeras.train._plan import TrainingPlan


def compile_for_training(
    model: keras.Model, config: TrainConfig, plan: TrainingPlan | None = None, **overrides
) -> None:
    """The optimizer (with the plan's schedule), loss and metrics of a run; the bench
    measures exactly this path. In the scope of the strategy the model was created under
    (mirrored training: the optimizer's variables are mirrored too). A model that would
    train on a TensorFlow kernel's wrong gradients is refused here (``_kernels``)."""
    refuse_wrong_gradients(model)
    with model_scope(model):
        _compile(model, config, plan, **overrides)
        build_training_state(model)


def _compile(model: keras.Model, config: TrainConfig, plan: TrainingPlan | None, **overrides):
    # a run stopped by the clock has its rate set by TimeBudget as the clock runs
    lr = learning_rate(config.lr, None if config.budget_seconds else plan)
    # Keras applies weight_decay decoupled from the gradient (Loshchilov & Hutter): Adam with
    # it is AdamW. The optimizer keeps the weights' moving average inside its step (a
    # callback would see only every steps_per_execution-th step).
    decay = {"weight_decay": config.weight_decay or None}
    if config.ema:
        decay.update(use_ema=True, ema_momentum=config.ema)
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(lr, **decay),
        "sgd": lambda: keras.optimizers.SGD(lr, momentum=config.momentum, **decay),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr, momentum=config.momentum, **decay),
    }[config.optimizer]()
    if config.loss == "mse":
        loss = keras.losses.MeanSquaredError()
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    if config.ema:
        warm_up_average(optimizer)
    # Measured in BENCHMARKS.md on a 2-core CPU: several steps per tf.function call are up to
    # 1.5x faster than one, when they divide the epoch; XLA (jit_compile) is slower there,
    # and op determinism turns it off anyway.
    spe = plan.steps_per_execution if plan else 32
    # JAX runs a step eagerly, op by op, unless it is compiled: there it always is
    jax = keras.backend.backend() == "jax"
    options = {"jit_compile": jax, "steps_per_execution": spe, **overrides}
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], **options)
