"""Mirrored training on two logical CPU devices against single-device training, step by step.

Run in a process of its own (the CPU is split into logical devices before TensorFlow starts
them): ``python tests/distributed_parity.py ARCH [--steps N] [--float64] [--out FILE]``,
``--save M.keras`` saves the mirrored model and reloads it with ``safe_mode``.
ARCH one of lenet5 (the zoo's) or resnet8 (He et al.'s CIFAR ResNet, batch norm in every
block). Both runs start from the same weights and see the same global batches of mnist5k
training images; each records the loss of every step (one step an epoch) and the final
weights. With batch norm, a third run leaves it per replica (unsynchronised): the
difference the synchronisation removes. Prints and writes one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("arch", choices=("lenet5", "resnet8"))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--save", help="save the mirrored model here (.keras) and reload it")
    args = parser.parse_args()

    from cnnkeras.train._distribute import make_strategy

    mirrored = make_strategy("mirrored", "cpu:2", verbose=0)  # first: splits the CPU

    import keras
    import numpy as np
    import tensorflow as tf

    from cnnkeras.data import load_dataset
    from cnnkeras.demos.residual import cifar_resnet
    from cnnkeras.models import create_model
    from cnnkeras.train import TrainConfig, compile_for_training, seed_everything
    from cnnkeras.train._distribute import for_strategy, scope

    if args.float64:
        keras.config.set_floatx("float64")
    dtype = keras.config.floatx()
    train = load_dataset("mnist5k", seed=42, verbose=0).splits["train"]
    order = np.random.default_rng(0).permutation(len(train))[: args.steps * BATCH]
    x = (train.images[order] / 255).astype(dtype)
    y = keras.utils.to_categorical(train.labels[order], 10).astype(dtype)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)

    def build():
        if args.arch == "resnet8":
            return cifar_resnet(8, skips=True)
        return create_model("lenet5", input_shape=(28, 28, 1), num_classes=10)

    seed_everything(1)
    initial = build().get_weights()
    config = TrainConfig(optimizer="sgd", lr=args.lr, schedule="constant")

    def run(strategy, synchronised: bool = True) -> dict:
        seed_everything(1)
        with scope(strategy):
            model = build()
            if synchronised:
                model = for_strategy(model, strategy)
        model.set_weights(initial)
        compile_for_training(model, config, None, steps_per_execution=1)
        history = model.fit(
            data.repeat(), steps_per_epoch=1, epochs=args.steps, verbose=0, shuffle=False
        )
        weights = np.concatenate([np.ravel(w) for w in model.get_weights()]).astype("float64")
        return {
            "loss": [float(v) for v in history.history["loss"]],
            "weights": weights,
            "model": model,
        }

    single = run(None)
    result = {"arch": args.arch, "steps": args.steps, "dtype": dtype, "lr": args.lr}
    variants = {"mirrored": run(mirrored)}
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in build().layers):
        variants["mirrored_per_replica_bn"] = run(mirrored, synchronised=False)
    for name, other in variants.items():
        loss_a, loss_b = np.array(single["loss"]), np.array(other["loss"])
        result[name] = {
            "loss_max_rel": float(np.max(np.abs(loss_a - loss_b) / np.abs(loss_a))),
            "weights_rel": float(
                np.linalg.norm(single["weights"] - other["weights"])
                / np.linalg.norm(single["weights"])
            ),
            "finite": bool(
                all(math.isfinite(v) for v in other["loss"]) and np.isfinite(other["weights"]).all()
            ),
            "first_loss": other["loss"][0],
            "last_loss": other["loss"][-1],
        }
    result["single"] = {"first_loss": single["loss"][0], "last_loss": single["loss"][-1]}
    if args.save:  # the mirrored model as a run saves it, loaded as evaluate and export do
        model = variants["mirrored"]["model"]
        model.save(args.save)
        loaded = keras.saving.load_model(args.save, safe_mode=True)
        result["saved"] = {
            "synchronized_bn": sum(
                getattr(layer, "synchronized", False) for layer in loaded.layers
            ),
            "predict_max_abs_diff": float(
                np.max(np.abs(model.predict(x[:64], verbose=0) - loaded.predict(x[:64], verbose=0)))
            ),
        }
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
