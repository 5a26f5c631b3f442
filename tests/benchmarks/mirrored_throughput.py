"""Training throughput of one device against MirroredStrategy over the CPU split into two
logical devices (BENCHMARKS.md, "Several devices"): what mirroring costs where there is no
second device to gain from.

    python tests/benchmarks/mirrored_throughput.py [--steps 60] [--repeats 3]

For each model: images per second of ``fit`` on fixed batches of 64 after a warm-up, the
median of ``repeats`` timings, for one device with 1 and with 16 steps per execution (what
train's plan picks when it divides the epoch) and for mirrored with 1 (the most it allows,
keras#19246).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 64


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from cnnkeras.train._distribute import make_strategy

    mirrored = make_strategy("mirrored", "cpu:2", verbose=0)

    import keras
    import numpy as np
    import tensorflow as tf

    from cnnkeras.demos.residual import cifar_resnet
    from cnnkeras.models import create_model
    from cnnkeras.train import TrainConfig, compile_for_training, seed_everything
    from cnnkeras.train._distribute import for_strategy, scope

    rng = np.random.default_rng(0)
    x = rng.random((args.steps * BATCH, 28, 28, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, len(x)), 10)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).cache().repeat()
    builders = {
        "lenet5": lambda: create_model("lenet5", input_shape=(28, 28, 1), num_classes=10),
        "resnet8": lambda: cifar_resnet(8, skips=True),
    }
    config = TrainConfig(optimizer="sgd", lr=0.01, schedule="constant")
    results = {}
    for name, build in builders.items():
        for label, strategy, spe in (
            ("one device, 1 step/execution", None, 1),
            ("one device, 16 steps/execution", None, 16),
            ("mirrored on 2 logical CPUs, 1 step/execution", mirrored, 1),
        ):
            seed_everything(0)
            with scope(strategy):
                model = for_strategy(build(), strategy)
            compile_for_training(model, config, None, steps_per_execution=spe)
            model.fit(data, steps_per_epoch=2 * spe, epochs=1, verbose=0)  # trace and warm up
            rates = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
                rates.append(args.steps * BATCH / (time.perf_counter() - started))
            results[f"{name}: {label}"] = round(statistics.median(rates), 1)
            print(f"{name:8s} {label:48s} {results[f'{name}: {label}']:8.1f} images/s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
