"""``cnnkeras demo CLAIM``: the lecture's claims about building blocks, measured.

Each demo trains small networks that differ only in the block in question, on the embedded
MNIST sample (28x28), over several seeds, with the same optimizer, batches and epochs, and
returns a table, the verdict (did the claim hold at this scale?) and a plot of the training
curves side by side. The defaults take a few minutes on a 2-core CPU; every size is a
parameter, so the tests run each demo in a reduced form.

Every network is built here from Keras layers, in the functional API, so that the one
difference is visible in the code: ``_vgg_style`` with and without batch norm, ``_plain_stack``
with either activation, ``_cifar_resnet`` with and without its skip connections, ``_block``
as one 5x5 or two 3x3 convolutions, standard or depthwise-separable.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnkeras import _io
from cnnkeras._timing import median_ms
from cnnkeras.data import DEFAULT_SEED, load_dataset
from cnnkeras.errors import UserError
from cnnkeras.models import count_macs
from cnnkeras.train import PreciseBatchNorm
from cnnkeras.train._run import seed_everything

SEEDS = (0, 1, 2)
BATCH = 64


@dataclass
class Data:
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_digits_28(train_images: int | None = None) -> Data:
    """mnist5k's training split (a stratified random ``train_images`` of it) and its
    validation split, scaled to 0..1."""
    from sklearn.model_selection import train_test_split

    data = load_dataset("mnist5k", seed=DEFAULT_SEED, verbose=0)
    train, val = data.splits["train"], data.splits["val"]
    n = len(train) if train_images is None else train_images
    if not 10 <= n <= len(train):
        raise UserError(f"`train_images` must be in 10..{len(train)}")
    if n < len(train):  # the split's order is by class: take every class alike
        keep, _ = train_test_split(
            np.arange(len(train)), train_size=n, stratify=train.labels, random_state=DEFAULT_SEED
        )
        train = train.subset(np.sort(keep))
    scale = np.float32(1 / 255)
    return Data(train.images * scale, train.labels, val.images * scale, val.labels)


@dataclass
class Curves:
    """Per-epoch training and validation accuracy of one run."""

    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fit(
    build: Callable[[], keras.Model],
    data: Data,
    *,
    epochs: int,
    lr: float,
    seed: int,
    optimizer: str = "adam",
):
    """Seed, build, and train at a constant ``lr`` with Adam (or SGD with momentum 0.9), the
    same for every variant of a demo; the model and its curves."""
    seed_everything(seed)
    model = build()
    model.compile(
        optimizer=(
            keras.optimizers.Adam(lr)
            if optimizer == "adam"
            else keras.optimizers.SGD(lr, momentum=0.9)
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    # batch norm is evaluated as `cnnkeras train` evaluates it: statistics recomputed for the
    # weights before each validation (the moving averages lag far behind in short runs)
    clean = tf.data.Dataset.from_tensor_slices((data.x, data.y)).batch(BATCH)
    started = time.perf_counter()
    history = model.fit(
        data.x,
        data.y,
        batch_size=BATCH,
        epochs=epochs,
        validation_data=(data.x_val, data.y_val),
        callbacks=[PreciseBatchNorm(clean)],
        verbose=0,
    ).history
    curves = Curves(
        [float(v) for v in history["accuracy"]],
        [float(v) if np.isfinite(v) else 0.0 for v in history["val_accuracy"]],
        time.perf_counter() - started,
    )
    return model, curves


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = list(values)
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _pm(values: Sequence[float], fmt: str = ".3f") -> str:
    mean, std = _mean_std(values)
    return f"{mean:{fmt}} +- {std:{fmt}}" if len(values) > 1 else f"{mean:{fmt}}"


def _curves_png(panels: dict[str, dict[str, list[Curves]]], title: str) -> bytes:
    """One panel per metric name; one line per variant (mean over seeds, band: min..max)."""
    from cnnkeras._figures import plt, png_bytes

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (metric, variants) in zip(axes[0], panels.items(), strict=True):
        for i, (name, runs) in enumerate(variants.items()):
            values = np.array([getattr(c, metric) for c in runs])
            epochs = np.arange(1, values.shape[1] + 1)
            ax.plot(epochs, values.mean(0), color=f"C{i}", label=name)
            if len(runs) > 1:
                ax.fill_between(epochs, values.min(0), values.max(0), color=f"C{i}", alpha=0.15)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)


def _result(name, claim, columns, rows, held, verdict, png, **extra) -> dict:
    """A demo's result; row keys starting with _ (what the verdict was computed from) go."""
    return {
        "demo": name,
        "claim": claim,
        "columns": list(columns),
        "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "held": bool(held),
        "verdict": verdict,
        "png": png,
        **extra,
    }


def _check(seeds: Sequence[int], **positive: int) -> None:
    if not seeds:
        raise UserError("`seeds` must hold at least one seed")
    for name, value in positive.items():
        if value < 1:
            raise UserError(f"`{name}` must be >= 1")


# ---------------------------------------------------------------- batch norm


def _vgg_style(batch_norm: bool, width: int = 16) -> keras.Model:
    """Two VGG blocks of two 3x3 convolutions (``width``, 2 x ``width``) with batch norm
    between each convolution and its ReLU or not, then global average pooling and softmax.
    (A flatten head puts a 1,568-input dense layer without batch norm last, which diverges
    at a high rate whatever comes before it: measured, it hid the effect.)"""
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for filters in (width, width, None, 2 * width, 2 * width, None):
        if filters is None:
            x = keras.layers.MaxPooling2D()(x)
            continue
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def _epochs_to(curves: Curves, target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curves.val_accuracy) if v >= target), None)


def batchnorm_held(rows: list[dict]) -> bool:
    """Rows alternate without and with batch norm, one pair per learning rate: with it,
    fewer epochs to the target at every rate, and a better final accuracy at the highest."""
    pairs = list(zip(rows[::2], rows[1::2], strict=True))
    faster = all(bn["_epochs"] < plain["_epochs"] for plain, bn in pairs)
    return faster and pairs[-1][1]["_final"] > pairs[-1][0]["_final"]


def batchnorm_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    epochs: int = 6,
    lrs: Sequence[float] = (0.01, 0.1),
    target: float = 0.9,
    train_images: int | None = None,
    width: int = 16,
) -> dict:
    """The same VGG-style network with and without batch norm, trained with SGD (momentum
    0.9; Ioffe and Szegedy's setting: Adam would hide part of the effect by scaling each
    step) at a usual and a high learning rate: epochs to reach ``target`` validation
    accuracy (not reached: counted as epochs + 1), and the final accuracy."""
    _check(seeds, epochs=epochs, width=width)
    data = load_digits_28(train_images)
    runs: dict[str, list[Curves]] = {}
    rows = []
    for lr in lrs:
        for bn in (False, True):
            name = f"{'with' if bn else 'without'} batch norm, lr {lr:g}"
            runs[name] = [
                fit(
                    lambda bn=bn: _vgg_style(bn, width),
                    data,
                    epochs=epochs,
                    lr=lr,
                    seed=s,
                    optimizer="sgd",
                )[1]
                for s in seeds
            ]
            reached = [_epochs_to(c, target) for c in runs[name]]
            missed = sum(r is None for r in reached)
            counted = [r or epochs + 1 for r in reached]
            rows.append(
                {
                    "batch norm": "yes" if bn else "no",
                    "lr": lr,
                    f"epochs to {target:g}": _pm(counted, ".1f")
                    + (f" ({missed} of {len(reached)} never)" if missed else ""),
                    "final val accuracy": _pm([c.val_accuracy[-1] for c in runs[name]]),
                    "_epochs": statistics.mean(counted),
                    "_final": statistics.mean(c.val_accuracy[-1] for c in runs[name]),
                }
            )
    pairs = [(rows[2 * i], rows[2 * i + 1]) for i in range(len(lrs))]  # (without, with)
    verdict = "; ".join(
        f"at lr {lr:g} batch norm took {bn['_epochs']:.1f} epochs to {target:g} against "
        f"{plain['_epochs']:.1f} and ended at {bn['_final']:.3f} against {plain['_final']:.3f}"
        for lr, (plain, bn) in zip(lrs, pairs, strict=True)
    )
    png = _curves_png({"val_accuracy": runs, "accuracy": runs}, "batch norm (SGD)")
    return _result(
        "batchnorm",
        "batch norm makes training faster and allows higher learning rates",
        ["batch norm", "lr", f"epochs to {target:g}", "final val accuracy"],
        rows,
        batchnorm_held(rows),
        verdict,
        png,
    )


# ---------------------------------------------------------------- dropout


def _dense_head(rate: float) -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(rate)(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    x = keras.layers.Dropout(rate)(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def dropout_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    epochs: int = 30,
    train_images: int = 500,
    rate: float = 0.5,
    lr: float = 1e-3,
) -> dict:
    """A network with a large dense head trained on few images, with and without dropout:
    the gap between training and validation accuracy, and the validation accuracy."""
    _check(seeds, epochs=epochs)
    if not 0 < rate < 1:
        raise UserError("`rate` must be in (0, 1)")
    data = load_digits_28(train_images)
    runs, rows = {}, []
    for r in (0.0, rate):
        name = f"dropout {r:g}"
        # training accuracy as the model is used: measured without dropout, after training
        finals = []
        runs[name] = []
        for s in seeds:
            model, curves = fit(lambda r=r: _dense_head(r), data, epochs=epochs, lr=lr, seed=s)
            train_acc = float(model.evaluate(data.x, data.y, verbose=0)[1])
            finals.append((train_acc, curves.val_accuracy[-1]))
            runs[name].append(curves)
        gaps = [t - v for t, v in finals]
        rows.append(
            {
                "dropout": r,
                "train accuracy": _pm([t for t, _ in finals]),
                "val accuracy": _pm([v for _, v in finals]),
                "gap": _pm(gaps),
                "_gap": statistics.mean(gaps),
                "_val": statistics.mean(v for _, v in finals),
            }
        )
    smaller, better = rows[1]["_gap"] < rows[0]["_gap"], rows[1]["_val"] >= rows[0]["_val"]
    verdict = (
        f"with dropout the train/validation gap was {'smaller' if smaller else 'not smaller'} "
        f"({rows[1]['_gap']:.3f} against {rows[0]['_gap']:.3f}) and validation accuracy "
        f"{'as good or better' if better else 'worse'}"
    )
    png = _curves_png({"val_accuracy": runs, "accuracy": runs}, f"dropout, {train_images} images")
    return _result(
        "dropout",
        "dropout regularises: a smaller gap between training and validation accuracy",
        ["dropout", "train accuracy", "val accuracy", "gap"],
        rows,
        dropout_held(rows),
        verdict,
        png,
        train_images=train_images,
    )


# ---------------------------------------------------------------- activations


INIT = "he_normal"


def dropout_held(rows: list[dict]) -> bool:
    """Without dropout, then with: a smaller train/validation gap and validation accuracy at
    least as good."""
    plain, dropped = rows
    return dropped["_gap"] < plain["_gap"] and dropped["_val"] >= plain["_val"]


def _plain_stack(activation: str, depth: int, width: int = 16) -> keras.Model:
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
    _check(seeds, depth=depth, epochs=epochs)
    data = load_digits_28(train_images)
    runs, rows, norms = {}, [], {}
    for activation in ("sigmoid", "relu"):
        per_seed, runs[activation] = [], []
        for s in seeds:
            seed_everything(s)
            per_seed.append(
                gradient_norms(_plain_stack(activation, depth), data.x[:256], data.y[:256])
            )
            build = lambda a=activation: _plain_stack(a, depth)  # noqa: E731
            runs[activation].append(fit(build, data, epochs=epochs, lr=lr, seed=s)[1])
        norms[activation] = np.mean(per_seed, axis=0).tolist()
        first, last = norms[activation][0], norms[activation][-1]
        rows.append(
            {
                "activation": activation,
                "gradient norm, first layer": f"{first:.2e}",
                "gradient norm, last layer": f"{last:.2e}",
                "first / last": f"{first / last:.2e}",
                "val accuracy": _pm([c.val_accuracy[-1] for c in runs[activation]]),
                "_ratio": first / last,
                "_val": statistics.mean(c.val_accuracy[-1] for c in runs[activation]),
            }
        )
    sig, relu = rows
    verdict = (
        f"at step 0 the first layer's gradient is {sig['_ratio']:.1e} of the last's with "
        f"sigmoid and {relu['_ratio']:.1e} with ReLU; after {epochs} epochs sigmoid reached "
        f"{sig['_val']:.3f} and ReLU {relu['_val']:.3f}"
    )
    png = _activation_png(norms, runs, depth)
    return _result(
        "activations",
        f"ReLU trains where sigmoid stalls in deep stacks ({depth} layers)",
        ACTIVATION_COLUMNS,
        rows,
        activations_held(rows),
        verdict,
        png,
        gradient_norms=norms,
    )


ACTIVATION_COLUMNS = (
    "activation",
    "gradient norm, first layer",
    "gradient norm, last layer",
    "first / last",
    "val accuracy",
)


def activations_held(rows: list[dict]) -> bool:
    """Sigmoid, then ReLU: ReLU's first-to-last gradient ratio ten times sigmoid's or more,
    and a validation accuracy more than 0.1 higher."""
    sig, relu = rows
    return relu["_ratio"] > 10 * sig["_ratio"] and relu["_val"] > sig["_val"] + 0.1


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


# ---------------------------------------------------------------- residual


def _cifar_resnet(depth: int, skips: bool, widths: Sequence[int] = (16, 32, 64)) -> keras.Model:
    """He et al.'s CIFAR network: depth = 6n + 2 (a stem, three stages of n blocks of two
    3x3 convolutions with batch norm, global pooling, softmax); ``skips=False`` is the same
    network without its identity shortcuts (the paper's plain net). Downsampling shortcuts
    are 1x1 convolutions with stride 2."""
    if (depth - 2) % 6:
        raise UserError(f"`depths` must be 6n + 2 (20, 32, 44, 56, ...), got {depth}")
    n = (depth - 2) // 6

    def conv_bn(x, filters, stride=1):
        x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        return keras.layers.BatchNormalization()(x)

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.ReLU()(conv_bn(inputs, widths[0]))
    for stage, filters in enumerate(widths):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            y = keras.layers.ReLU()(conv_bn(x, filters, stride))
            y = conv_bn(y, filters)
            if skips:
                shortcut = x
                if stride != 1 or x.shape[-1] != filters:
                    shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
                    shortcut = keras.layers.BatchNormalization()(shortcut)
                y = keras.layers.Add()([y, shortcut])
            x = keras.layers.ReLU()(y)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def count_adds(model: keras.Model) -> int:
    """The model's Add layers: its skip connections."""
    return sum(isinstance(layer, keras.layers.Add) for layer in model.layers)


RESIDUAL_COLUMNS = (
    "network",
    "layers with weights",
    "skip connections (Add)",
    "params",
    "train accuracy",
    "val accuracy",
)


def residual_held(rows: list[dict], shallow: int, deep: int) -> bool:
    """The deep plain network trains worse than the shallow plain one, and the deep residual
    one better than the deep plain one (training accuracy: a claim about optimisation)."""
    by = {r["network"]: r["_train"] for r in rows}
    degrades = by[f"plain-{deep}"] < by[f"plain-{shallow}"]
    return degrades and by[f"residual-{deep}"] > by[f"plain-{deep}"]


def residual_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    depths: Sequence[int] = (20, 56),
    epochs: int = 4,
    lr: float = 1e-3,
    train_images: int | None = 1000,
    widths: Sequence[int] = (8, 16, 32),
) -> dict:
    """Plain nets against the same depths with skip connections: the deeper plain net
    trains worse than the shallower one, the residual one does not (He et al., Figure 1)."""
    _check(seeds, epochs=epochs)
    data = load_digits_28(train_images)
    runs, rows = {}, []
    for depth in depths:
        for skips in (False, True):
            name = f"{'residual' if skips else 'plain'}-{depth}"
            model = _cifar_resnet(depth, skips, widths)
            runs[name] = [
                fit(
                    lambda d=depth, k=skips: _cifar_resnet(d, k, widths),
                    data,
                    epochs=epochs,
                    lr=lr,
                    seed=s,
                )[1]
                for s in seeds
            ]
            rows.append(
                {
                    "network": name,
                    "layers with weights": depth,
                    "skip connections (Add)": count_adds(model),
                    "params": f"{model.count_params():,}",
                    "train accuracy": _pm([c.accuracy[-1] for c in runs[name]]),
                    "val accuracy": _pm([c.val_accuracy[-1] for c in runs[name]]),
                    "_train": statistics.mean(c.accuracy[-1] for c in runs[name]),
                }
            )
    by = {r["network"]: r["_train"] for r in rows}
    shallow, deep = min(depths), max(depths)
    verdict = (
        f"training accuracy after {epochs} epochs: plain {by[f'plain-{shallow}']:.3f} "
        f"({shallow} layers) and {by[f'plain-{deep}']:.3f} ({deep}); residual "
        f"{by[f'residual-{shallow}']:.3f} and {by[f'residual-{deep}']:.3f}"
    )
    png = _curves_png({"accuracy": runs, "val_accuracy": runs}, "plain against residual")
    return _result(
        "residual",
        "skip connections let deep networks train where plain ones degrade",
        RESIDUAL_COLUMNS,
        rows,
        residual_held(rows, shallow, deep),
        verdict,
        png,
    )


# ---------------------------------------------------------------- receptive field, separable


def _conv(x, filters: int, kernel: int, batch_norm: bool, depthwise: bool = False):
    """A convolution and its ReLU, with batch norm between them when asked."""
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, padding="same", use_bias=not batch_norm)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=not batch_norm)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def _block(kind: str, x, channels: int, batch_norm: bool = False):
    """The block under test, ``channels`` in and out. Without batch norm its parameters and
    MACs are the lecture's formulas; the trained networks put batch norm after every
    convolution in both variants, as MobileNet does (without it the separable network
    stayed at chance for 5 epochs: measured)."""
    if kind == "one 5x5":
        return _conv(x, channels, 5, batch_norm)
    if kind == "two 3x3":
        return _conv(_conv(x, channels, 3, batch_norm), channels, 3, batch_norm)
    if kind == "standard 3x3":
        return _conv(x, channels, 3, batch_norm)
    if kind == "separable 3x3":  # depthwise 3x3 then pointwise 1x1 (MobileNet v1)
        if not batch_norm:
            return keras.layers.ReLU()(keras.layers.SeparableConv2D(channels, 3, padding="same")(x))
        return _conv(_conv(x, channels, 3, True, depthwise=True), channels, 1, True)
    raise ValueError(kind)


def _block_model(kind: str, size: int, channels: int, repeats: int = 1) -> keras.Model:
    inputs = keras.Input((size, size, channels))
    x = inputs
    for _ in range(repeats):
        x = _block(kind, x, channels)
    return keras.Model(inputs, x)


def _classifier(kind: str, channels: int, repeats: int) -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = _conv(inputs, channels, 3, batch_norm=True)
    for stage in range(2):
        for _ in range(repeats):
            x = _block(kind, x, channels, batch_norm=True)
        if stage == 0:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def latency_ms(model: keras.Model, batch: int = 1, runs: int = 50) -> float:
    """Median milliseconds of one call on ``batch`` zero images (a tf.function, warmed up)."""
    call = tf.function(lambda t: model(t, training=False))
    x = tf.zeros((batch, *model.input_shape[1:]))
    return median_ms(lambda: call(x).numpy(), runs)


def _blocks_demo(
    kinds: tuple[str, str],
    seeds: Sequence[int],
    channels: int,
    size: int,
    epochs: int,
    lr: float,
    train_images: int | None,
    repeats: int,
) -> tuple[list[dict], dict]:
    _check(seeds, channels=channels, size=size, epochs=epochs, repeats=repeats)
    data = load_digits_28(train_images)
    runs, rows = {}, []
    for kind in kinds:
        block = _block_model(kind, size, channels)
        runs[kind] = [
            fit(
                lambda k=kind: _classifier(k, channels, repeats), data, epochs=epochs, lr=lr, seed=s
            )[1]
            for s in seeds
        ]
        rows.append(
            {
                "block": kind,
                "params": block.count_params(),
                "MACs": count_macs(block),
                "latency ms": latency_ms(block),
                "val accuracy": _pm([c.val_accuracy[-1] for c in runs[kind]]),
                "_val": statistics.mean(c.val_accuracy[-1] for c in runs[kind]),
            }
        )
    return rows, runs


def receptive_field_held(rows: list[dict]) -> bool:
    """One 5x5, then two 3x3: fewer parameters, and validation accuracy within 0.01."""
    five, three = rows
    return three["params"] < five["params"] and three["_val"] >= five["_val"] - 0.01


def receptive_field_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    channels: int = 64,
    size: int = 28,
    epochs: int = 5,
    lr: float = 1e-3,
    train_images: int | None = 2000,
    repeats: int = 1,
) -> dict:
    """One 5x5 convolution against two stacked 3x3 ones (the same 5x5 receptive field):
    parameters, MACs and CPU latency of the block (``channels`` in and out, ``size``
    square), and the accuracy of a small network built from each."""
    kinds = ("one 5x5", "two 3x3")
    claim = "two stacked 3x3 convolutions see as much as one 5x5 with fewer parameters"
    rows, runs = _blocks_demo(kinds, seeds, channels, size, epochs, lr, train_images, repeats)
    five, three = rows
    for row in rows:
        row["receptive field"] = 5
    verdict = (
        f"two 3x3 have {three['params'] / five['params']:.2f}x the parameters and "
        f"{three['MACs'] / five['MACs']:.2f}x the MACs of one 5x5, run in "
        f"{three['latency ms'] / five['latency ms']:.2f}x its time here, and the network "
        f"reached {three['_val']:.3f} against {five['_val']:.3f}"
    )
    return _result(
        "receptive-field",
        claim,
        ["block", "receptive field", "params", "MACs", "latency ms", "val accuracy"],
        rows,
        receptive_field_held(rows),
        verdict,
        _curves_png({"val_accuracy": runs, "accuracy": runs}, "one 5x5 against two 3x3"),
    )


def separable_held(rows: list[dict]) -> bool:
    """Standard, then separable: under half the MACs, validation accuracy within 0.02."""
    standard, separable = rows
    cheap = separable["MACs"] / standard["MACs"] < 0.5
    return cheap and separable["_val"] >= standard["_val"] - 0.02


def separable_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    channels: int = 64,
    size: int = 28,
    epochs: int = 5,
    lr: float = 1e-3,
    train_images: int | None = 2000,
    repeats: int = 2,
) -> dict:
    """Standard against depthwise-separable 3x3 convolutions (``channels`` in and out):
    parameters, MACs and CPU latency of one layer, the lecture's ratio 1/N + 1/9, and the
    accuracy of a small network built from each."""
    kinds = ("standard 3x3", "separable 3x3")
    claim = "depthwise-separable convolutions cost a fraction of standard ones"
    rows, runs = _blocks_demo(kinds, seeds, channels, size, epochs, lr, train_images, repeats)
    standard, separable = rows
    formula = 1 / channels + 1 / 9
    ratio = separable["MACs"] / standard["MACs"]
    verdict = (
        f"separable costs {ratio:.3f}x the MACs (the lecture's 1/N + 1/9 = {formula:.3f}), "
        f"{separable['params'] / standard['params']:.3f}x the parameters, runs in "
        f"{separable['latency ms'] / standard['latency ms']:.2f}x the time on this CPU, and "
        f"the network reached {separable['_val']:.3f} against {standard['_val']:.3f}"
    )
    return _result(
        "separable",
        claim,
        ["block", "params", "MACs", "latency ms", "val accuracy"],
        rows,
        separable_held(rows),
        verdict,
        _curves_png({"val_accuracy": runs, "accuracy": runs}, "standard against separable"),
        mac_ratio=ratio,
        formula=formula,
    )


DEMOS: dict[str, Callable[..., dict]] = {
    "batchnorm": batchnorm_demo,
    "dropout": dropout_demo,
    "activations": activations_demo,
    "residual": residual_demo,
    "receptive-field": receptive_field_demo,
    "separable": separable_demo,
}


def run_demo(
    name: str, seeds: Sequence[int] = SEEDS, *, plot: str | Path | None = None, **options
) -> dict:
    """Run the demo ``name`` (a key of DEMOS) with its ``options``; with ``plot``, write the
    training curves there as PNG (the result's ``plot``)."""
    if name not in DEMOS:
        raise UserError(f"unknown demo {name!r}; choose {', '.join(DEMOS)} or transfer")
    result = DEMOS[name](tuple(seeds), **options)
    png = result.pop("png")
    if plot:
        _io.write_bytes(Path(plot), png)
        result["plot"] = str(plot)
    return result


def demo_text(result: dict) -> str:
    """The claim, the table, and the verdict."""

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    columns = result["columns"]
    lines = [f"claim: {result['claim']}", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in result["rows"]]
    held = "held" if result["held"] else "did not hold"
    lines += ["", f"{held}: {result['verdict']}"]
    if result.get("plot"):
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines)


__all__ = [
    "DEMOS",
    "count_adds",
    "demo_text",
    "gradient_norms",
    "latency_ms",
    "run_demo",
]
