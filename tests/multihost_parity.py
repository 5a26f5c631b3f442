"""Multi-host training (2 processes, keras.distribution on JAX) against one process, step by
step: ``python tests/multihost_parity.py ARCH [--steps N] [--processes P] [--float64]
[--out FILE]``.

ARCH one of lenet5 (the zoo's), resnet8 (He et al.'s CIFAR ResNet, batch norm in every
block) or bn (pixels, batch norm, pooling, dense: the smallest network with batch norm).
Both runs are JAX, start from the same seed and see the same global batches of mnist5k
training images; the reference is one plain process (no distribution at all), the other
``cnnkeras launch``'s P processes, each fed its share of every batch by Keras. Each records
the loss of every step (one step an epoch), the final weights and the median time of a step
after the first five. ``--float64`` computes batch norm in float64 too (Keras on JAX keeps
it in float32 otherwise). Prints and writes one JSON object. Run with ``--worker`` it is one
of those processes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 32


def worker(args) -> None:
    import jax

    if args.float64:
        jax.config.update("jax_enable_x64", True)
    import keras
    import numpy as np
    import tensorflow as tf

    from cnnkeras.data import load_dataset
    from cnnkeras.demos.residual import cifar_resnet
    from cnnkeras.models import create_model
    from cnnkeras.train import TrainConfig, compile_for_training, seed_everything
    from cnnkeras.train._multihost import start

    cluster = start(verbose=0) if "KERAS_DISTRIBUTION_PROCESS_ID" in os.environ else None
    if args.float64:
        keras.config.set_floatx("float64")
        # On JAX, keras.backend.result_type maps float64 to float32 whatever jax_enable_x64
        # says ("aligned with JAX's default", keras-team/keras PR 18482), and batch norm
        # computes in result_type(inputs, "float32"): left alone, its statistics and their
        # gradients are summed in float32, one process's order against another's, which
        # is a float32 difference (1e-8 a step) in a float64 comparison.
        from keras.src.backend.common import dtypes

        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
    dtype = keras.config.floatx()
    train = load_dataset("mnist5k", seed=42, verbose=0).splits["train"]
    order = np.random.default_rng(0).permutation(len(train))[: args.steps * BATCH]
    # pixels in float32 first: Keras hands each process's share to JAX in float32 (the
    # inputs' rounding, not the training, would otherwise differ in float64)
    x = (train.images[order] / 255).astype("float32").astype(dtype)
    y = keras.utils.to_categorical(train.labels[order], 10).astype(dtype)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)
    distribution = keras.distribution.distribution()
    shared = distribution.distribute_dataset(data) if distribution else data
    local_batch = int(next(iter(shared))[0].shape[0])  # what this process is fed of a batch
    seed_everything(1)
    if args.arch == "resnet8":
        model = cifar_resnet(8, skips=True)
    elif args.arch == "bn":  # the smallest network with batch norm: pixels, BN, pool, dense
        inputs = keras.Input((28, 28, 1))
        pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.BatchNormalization()(inputs))
        model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(pooled))
    else:
        model = create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    config = TrainConfig(optimizer="sgd", lr=args.lr, schedule="constant")
    compile_for_training(model, config, None, steps_per_execution=1)
    initial = np.concatenate([np.ravel(w) for w in model.get_weights()]).astype("float64")
    started = time.perf_counter()
    ends = []
    clock = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: ends.append(time.perf_counter()))
    history = model.fit(
        data.repeat(), steps_per_epoch=1, epochs=args.steps, verbose=0, shuffle=False,
        callbacks=[clock],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    step_ms = 1000 * float(np.median(np.diff(ends[4:])))  # after compilation and warm-up
    weights = np.concatenate([np.ravel(w) for w in model.get_weights()]).astype("float64")
    if cluster is None or cluster.writer:
        np.save(args.out + ".weights.npy", np.stack([initial, weights]))
        record = {
            "loss": [float(v) for v in history.history["loss"]],
            "seconds": seconds,
            "step_ms": step_ms,
            "local_batch": local_batch,
        }
        Path(args.out).write_text(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("arch", choices=("lenet5", "resnet8", "bn"))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import numpy as np

    from cnnkeras._launch import launch

    folder = Path(tempfile.mkdtemp(prefix="multihost-parity-"))
    own = [sys.executable, __file__, args.arch, "--worker", "--steps", str(args.steps)]
    own += ["--lr", str(args.lr), *(["--float64"] if args.float64 else [])]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    single, multi = folder / "single.json", folder / "multi.json"
    subprocess.run([*own, "--out", str(single)], env=env, check=True)
    code = launch([*own, "--out", str(multi)], args.processes, log_dir=folder)
    if code:
        sys.exit(f"the {args.processes}-process run failed ({code}); logs in {folder}")
    runs = {}
    for name, path in (("single", single), ("multi", multi)):
        runs[name] = json.loads(path.read_text())
        runs[name]["initial"], runs[name]["weights"] = np.load(f"{path}.weights.npy")
    a, b = runs["single"], runs["multi"]
    loss_a, loss_b = np.array(a["loss"]), np.array(b["loss"])
    result = {
        "arch": args.arch,
        "steps": args.steps,
        "processes": args.processes,
        "dtype": "float64" if args.float64 else "float32",
        "lr": args.lr,
        "same_initial_weights": bool(np.array_equal(a["initial"], b["initial"])),
        "loss_max_rel": float(np.max(np.abs(loss_a - loss_b) / np.abs(loss_a))),
        "weights_rel": float(
            np.linalg.norm(a["weights"] - b["weights"]) / np.linalg.norm(a["weights"])
        ),
        "finite": bool(
            all(math.isfinite(v) for v in b["loss"]) and np.isfinite(b["weights"]).all()
        ),
        "loss_rel_steps": [float(v) for v in np.abs(loss_a - loss_b) / np.abs(loss_a)][:8],
        "single": {"first_loss": a["loss"][0], "last_loss": a["loss"][-1], "step_ms": a["step_ms"]},
        "multi": {"first_loss": b["loss"][0], "last_loss": b["loss"][-1], "step_ms": b["step_ms"]},
        "throughput_ratio": a["step_ms"] / b["step_ms"],  # multi / single images per second
        "local_batch": {"single": a["local_batch"], "multi": b["local_batch"]},
    }
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
