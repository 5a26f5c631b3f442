"""Mixed precision: which one a run trains in, and the models it builds and saves.

``--precision bfloat16`` builds the model under Keras's ``mixed_bfloat16`` policy (float32
variables, bfloat16 computation: AMX and AVX512-BF16 CPUs run bfloat16 matmuls several times
faster), ``float16`` under ``mixed_float16`` (GPUs; Keras scales the loss). Some layers stay
in float32 inside a mixed model: the classifier, so that the softmax and the loss are
float32, and by default the depthwise convolutions, which were slower in bfloat16 on an AMX
CPU (BENCHMARKS.md). Batch norm computes its statistics in float32 under any policy (Keras). The
model a run saves as ``model.keras`` computes in float32 (``as_float32``), so that reports,
calibration and exports are those of a float32 model; checkpoints keep the mixed model, so
that ``--resume`` continues in the recorded precision.

``auto`` chooses bfloat16 where the CPU has AMX or AVX512-BF16 and a probe of a few training
steps shows it faster for this model at this batch size, else float32, and says why. For a
model with layers of the kept types, the probe times bfloat16 with them in float32 and with
them in bfloat16 too, and takes the faster: the per-layer choice is measured, not assumed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from cnnkeras import _io
from cnnkeras._keras_internals import all_layers, producing_layer

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
PRECISIONS = (*POLICIES, "auto")  # what a run may ask for; auto resolves to one of POLICIES
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo: bfloat16 in hardware
PROBE_STEPS = 3  # timed training steps of each precision, after one untimed call
PROBE_MARGIN = 1.1  # bfloat16 only when at least this much faster: never slower by choice
KEPT_FLOAT32 = ("DepthwiseConv2D",)  # layer types slower in bfloat16 on an AMX CPU (BENCHMARKS.md)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo is not there)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@contextlib.contextmanager
def policy(precision: str) -> Iterator[None]:
    """Keras's global dtype policy set to ``precision``'s while models are built."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def build_in_precision(
    precision: str, make: Callable[[], keras.Model], float32_layers: tuple[str, ...] = KEPT_FLOAT32
) -> keras.Model:
    """``make()`` under ``precision``'s policy, its output layers and the layers of the types
    named in ``float32_layers`` kept in float32."""
    if precision == "float32":
        return make()
    with policy(precision):
        model = make()
    outputs = {id(producing_layer(t)) for t in model.outputs}
    for layer in all_layers(model):
        if id(layer) in outputs or type(layer).__name__ in float32_layers:
            layer.dtype_policy = "float32"
    return model


def precision_of(model: keras.Model) -> str:
    """The precision a model computes in: that of its mixed layers, if any."""
    for layer in all_layers(model):
        name = layer.dtype_policy.name
        for precision, policy_name in POLICIES.items():
            if name == policy_name and precision != "float32":
                return precision
    return "float32"


def _float32_config(node):
    """A model config with every layer's dtype policy float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and isinstance(node.get("config"), dict):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {k: _float32_config(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32_config(v) for v in node]
    return node


def as_float32(model: keras.Model) -> keras.Model:
    """The same model computing in float32: its config with float32 policies, its weights
    (float32 variables under every mixed policy) copied."""
    if precision_of(model) == "float32":
        return model
    config = keras.saving.serialize_keras_object(model)
    with policy("float32"):
        twin = keras.saving.deserialize_keras_object(_float32_config(config), safe_mode=True)
    twin.set_weights(model.get_weights())
    return twin


def _step_seconds(model: keras.Model, batch_size: int, compile: Callable) -> float:
    """Seconds a training step of ``model`` takes at ``batch_size``, on random images, as
    the run compiles it (median of ``PROBE_STEPS`` after one untimed step)."""
    compile(model)
    shape = (batch_size, *model.input_shape[1:])
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    classes = int(model.output_shape[-1])
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch_size)]
    model.train_on_batch(x, y)
    times = []
    for _ in range(PROBE_STEPS):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


class Choice(NamedTuple):
    """The precision a run trains in, the layer types kept float32 in it, and why."""

    precision: str
    float32_layers: tuple[str, ...]
    why: str


def _kept_choices(make: Callable[[], keras.Model]) -> list[tuple[str, ...]]:
    """The layer types to keep in float32 in the bfloat16 builds to probe: the kept types and
    none, or none alone for a model without layers of those types."""
    types = {type(layer).__name__ for layer in all_layers(make())}
    return [KEPT_FLOAT32, ()] if types & set(KEPT_FLOAT32) else [()]


def _named(float32_layers: tuple[str, ...]) -> str:
    kept = ", ".join(float32_layers) or "classifier alone"
    return f"{kept} in float32"


def choose(
    asked: str,
    make: Callable[[], keras.Model],
    batch_size: int,
    compile: Callable[[keras.Model], None],
    *,
    flags: set[str] | None = None,
    gpus: int | None = None,
) -> Choice:
    """What a run that asked for ``asked`` trains in; ``auto`` probes ``make()``'s models,
    compiled by ``compile``, at ``batch_size``."""
    if asked != "auto":
        kept = KEPT_FLOAT32 if asked != "float32" else ()
        return Choice(asked, kept, f"precision {asked}: as asked")
    gpus = len(keras_gpus()) if gpus is None else gpus
    if gpus:
        why = "precision float32: auto does not probe GPUs yet; ask for float16"
        return Choice("float32", (), why)
    flags = cpu_flags() if flags is None else flags
    hardware = [f for f in BF16_FLAGS if f in flags]
    if not hardware:
        why = "precision float32: this CPU has no bfloat16 units (AMX, AVX512-BF16)"
        return Choice("float32", (), why)
    f32 = _step_seconds(make(), batch_size, compile)
    timed = [
        (_step_seconds(build_in_precision("bfloat16", make, kept), batch_size, compile), kept)
        for kept in _kept_choices(make)
    ]
    fastest, kept = min(timed)
    speedup = f32 / fastest
    if speedup < PROBE_MARGIN:
        chosen, kept, label = "float32", (), "float32"
    else:
        chosen, label = "bfloat16", f"bfloat16 ({_named(kept)})"
    steps = ", ".join(f"{t * 1e3:.1f} ms in bfloat16 ({_named(k)})" for t, k in timed)
    return Choice(
        chosen,
        kept,
        f"precision {label}: a training step takes {steps} against {f32 * 1e3:.1f} ms in "
        f"float32 ({speedup:.2f}x at best; {', '.join(hardware)})",
    )


def save_float32(model_file: Path) -> None:
    """``model_file`` rewritten to compute in float32, if it does not already."""
    model = keras.saving.load_model(model_file, safe_mode=True)
    if precision_of(model) != "float32":
        _io.save_model(as_float32(model), model_file)


def keras_gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")
