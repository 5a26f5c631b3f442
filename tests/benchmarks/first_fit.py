"""What the first ``fit`` of a model costs before its first step counts, with the optimizer's
and the metrics' variables created inside the train function's first trace (Keras's default
on TensorFlow without a strategy: the function is traced twice) against created first
(``build_training_state``, what ``compile_for_training`` does). MobileNet v2 (alpha 0.35,
32x32x1, 10 classes), Adam, one epoch of 6 batches of 64 and a validation of 2, as
``compile_for_training`` compiles it; medians of 3 interleaved rounds, a fresh model each.
The losses of the two must be identical. ``python tests/benchmarks/first_fit.py``."""

import statistics
import time

import numpy as np

from cnnkeras._spawn import import_tensorflow_quietly

import_tensorflow_quietly()
import keras  # noqa: E402

from cnnkeras.models import create_model  # noqa: E402
from cnnkeras.train import TrainConfig, compile_for_training  # noqa: E402
from cnnkeras.train._optim import _compile  # noqa: E402

ROUNDS = 3


def first_fit(build_first: bool) -> tuple[float, list[float]]:
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = create_model("mobilenet_v2", input_shape=(32, 32, 1), num_classes=10, alpha=0.35)
    rng = np.random.default_rng(0)
    x = rng.random((8 * 64, 32, 32, 1), np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 8 * 64)]
    start = time.perf_counter()
    # compile_for_training is _compile, then build_training_state
    (compile_for_training if build_first else _compile)(
        model, TrainConfig(), None, steps_per_execution=6
    )
    history = model.fit(
        x[:384], y[:384], batch_size=64, epochs=1, validation_data=(x[384:], y[384:]), verbose=0
    )
    return time.perf_counter() - start, history.history["loss"]


def main() -> None:
    times = {False: [], True: []}
    losses = {}
    for _ in range(ROUNDS):
        for build_first in (False, True):
            seconds, losses[build_first] = first_fit(build_first)
            times[build_first].append(seconds)
            print(f"built first: {build_first}  {seconds:.1f} s", flush=True)
    assert losses[False] == losses[True], losses  # the same training, only sooner
    for build_first, seen in times.items():
        label = "built first" if build_first else "built in the trace (Keras's default)"
        print(f"{label}: median {statistics.median(seen):.1f} s of {ROUNDS} ({seen})")


if __name__ == "__main__":
    main()
