"""Activations: a deep plain stack of convolutions with sigmoid against ReLU."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from cnnkeras.demos._harness import check, last, load_digits_28, measure, result
from cnnkeras.demos._registry import DEMOS, SEEDS, register_demo
from cnnkeras.train import seed_everything

INIT = "he_normal"
COLUMNS = (
    "activation",
    "gradient norm, first layer",
    "gradient norm, last layer",
    "first / last",
    "val accuracy",
)


def plain_stack(activation: str, depth: int, width: int = 16) -> keras.Model:
    """``depth`` 3x3 convolutions of ``width`` channels with ``activation`` and nothing
    else: no batch norm, no skips. Both activations get He et al.'s initialisation, the one
    derived for ReLU: with Keras' default (Glorot) a 20-layer ReLU stack's signal halves
    layer after layer and it did not train either (measured), which hides the claim."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.AveragePooling2D(2)(inputs)
    for i in range(depth):
        x = keras.layers.Conv2D(
            width,
            3,
            padding="same",
            activation=activation,
            kernel_initializer=INIT,
            name=f"conv{i}",
        )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def gradient_norms(model: keras.Model, x: np.ndarray, y: np.ndarray) -> list[float]:
    """The norm of the loss gradient for each convolution's kernel, first layer first."""
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    return [float(tf.norm(g)) for g in tape.gradient(loss, kernels)]


def activations_held(rows: list[dict]) -> bool:
    """Sigmoid, then ReLU: ReLU's first-to-last gradient ratio ten times sigmoid's or more,
    and a validation accuracy more than 0.1 higher."""
    sig, relu = rows
    return relu["_ratio"] > 10 * sig["_ratio"] and relu["_val"] > sig["_val"] + 0.1


@register_demo("activations")
def activations_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    depth: int = 20,
    epochs: int = 5,
    lr: float = 1e-3,
    train_images: int | None = 2000,
) -> dict:
    """A plain stack of ``depth`` convolutions with sigmoid against ReLU: the gradient norm
    of each layer at step 0, and the accuracy after training."""
    check(seeds, depth=depth, epochs=epochs)
    data = load_digits_28(train_images)
    rows, norms = [], {}
    builds = {a: lambda a=a: plain_stack(a, depth) for a in ("sigmoid", "relu")}
    for activation, build in builds.items():
        per_seed = []
        for s in seeds:  # at step 0: the weights of the seed
            seed_everything(s)
            per_seed.append(gradient_norms(build(), data.x[:256], data.y[:256]))
        norms[activation] = np.mean(per_seed, axis=0).tolist()
    runs = measure(builds, seeds, data, epochs=epochs, lr=lr)
    for activation in builds:
        first, final = norms[activation][0], norms[activation][-1]
        val, val_mean = last(runs[activation])
        rows.append(
            {
                "activation": activation,
                "gradient norm, first layer": f"{first:.2e}",
                "gradient norm, last layer": f"{final:.2e}",
                "first / last": f"{first / final:.2e}",
                "val accuracy": val,
                "_ratio": first / final,
                "_val": val_mean,
            }
        )
    sig, relu = rows
    verdict = (
        f"at step 0 the first layer's gradient is {sig['_ratio']:.1e} of the last's with "
        f"sigmoid and {relu['_ratio']:.1e} with ReLU; after {epochs} epochs sigmoid reached "
        f"{sig['_val']:.3f} and ReLU {relu['_val']:.3f}"
    )
    return result(
        "activations",
        COLUMNS,
        rows,
        activations_held(rows),
        verdict,
        _activation_png(norms, runs, depth),
        claim=f"{DEMOS['activations'].claim} ({depth} layers)",
        gradient_norms=norms,
    )


def _activation_png(norms: dict, runs: dict, depth: int) -> bytes:
    from cnnkeras._figures import plt, png_bytes

    fig, (left, right) = plt.subplots(1, 2, figsize=(10.4, 3.8))
    for i, (name, values) in enumerate(norms.items()):
        left.semilogy(range(1, depth + 1), values, "o-", ms=3, color=f"C{i}", label=name)
        curves = np.array([c.val_accuracy for c in runs[name]])
        right.plot(range(1, curves.shape[1] + 1), curves.mean(0), color=f"C{i}", label=name)
    left.set_xlabel("layer")
    left.set_ylabel("gradient norm at step 0")
    right.set_xlabel("epoch")
    right.set_ylabel("val accuracy")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"a plain stack of {depth} convolutions", fontsize=10)
    return png_bytes(fig)
