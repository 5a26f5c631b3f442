"""Data-parallel training on the devices of one machine: ``tf.distribute.MirroredStrategy``.

Keras 3's ``fit`` runs under a strategy when the model and its optimizer are created in the
strategy's scope: every replica holds a copy of the weights, each global batch is split
across the replicas, the gradients are summed across them before the update, and Keras
divides the loss by the number of replicas. ``--batch-size`` therefore stays the global
batch: a run gives the same updates on one device or several, up to the order of float
sums, which is what the parity test measures.

One layer would differ: batch norm normalises each replica's share of the batch by that
share's statistics. Every batch-norm layer is set ``synchronized=True`` (Keras' own option,
saved in the model and loaded under ``safe_mode``), so its statistics are the global batch's,
as on one device.

``multi-host`` (several processes, on one machine or several) is ``_multihost``'s: Keras'
``keras.distribution`` on the JAX backend. The helpers below serve both.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from cnnkeras import _io
from cnnkeras._keras_internals import all_layers
from cnnkeras.errors import UserError
from cnnkeras.train import _multihost

DISTRIBUTE = ("none", "mirrored", "multi-host")


def _logical_cpus(count: int) -> list[str]:
    """Split the CPU into ``count`` logical devices (how Keras tests MirroredStrategy without
    GPUs); possible only before TensorFlow has started its devices."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is None or len(current) != count:
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count
            )
        except RuntimeError:
            raise UserError(
                f"`devices` cpu:{count} must be set before TensorFlow starts its devices: run "
                "it in a fresh process (as the command line does)"
            ) from None
    return [f"/cpu:{i}" for i in range(count)]


def parse_devices(spec: str | None) -> list[str] | None:
    """``gpu:0,gpu:1`` -> those devices; ``cpu:N`` -> N logical devices of the CPU; None ->
    every local GPU (None when there is none)."""
    if spec is None:
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        return gpus or None
    text = spec.strip().lower()
    if text.startswith("cpu:") and "," not in text:
        count = text.removeprefix("cpu:")
        if not count.isdigit() or int(count) < 1:
            raise UserError(f"`devices` cpu:N needs a count >= 1, got {spec!r}")
        return _logical_cpus(int(count))
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {d.name.lower().split("device:")[-1]: d.name for d in tf.config.list_logical_devices()}
    devices = []
    for name in names:
        key = name.removeprefix("/").split("device:")[-1]
        if key not in known:
            raise UserError(
                f"`devices`: no device {name!r} here; this machine has "
                f"{', '.join(sorted(known))} (or cpu:N to split the CPU)"
            )
        devices.append(known[key])
    if len(set(devices)) != len(devices):
        raise UserError(f"`devices` names a device twice: {spec!r}")
    return devices


def make_strategy(distribute: str, devices: str | None, verbose: int = 1):
    """The strategy of a run: None for ``none``; MirroredStrategy over ``devices`` (see
    ``parse_devices``) for ``mirrored``; the joined ``_multihost.Cluster`` for multi-host."""
    if distribute not in DISTRIBUTE:
        raise UserError(f"`distribute` must be one of {', '.join(DISTRIBUTE)}, got {distribute!r}")
    if distribute != "mirrored" and devices is not None:
        raise UserError("`devices` needs `distribute` mirrored")
    if distribute == "none":
        return None
    if distribute == "multi-host":
        return _multihost.start(verbose)
    names = parse_devices(devices)
    if names is None:
        names = ["/cpu:0"]
        _io.log(verbose, "mirrored: no GPU found, one replica on the CPU (cpu:N splits it)")
    strategy = tf.distribute.MirroredStrategy(names)
    _io.log(verbose, f"mirrored over {strategy.num_replicas_in_sync} device(s): {', '.join(names)}")
    return strategy


def single_process(distribute: str, command: str) -> None:
    """Refuse ``multi-host`` where only ``train`` (and its ``--resume``) runs it."""
    if distribute == "multi-host":
        raise UserError(
            f"`distribute` multi-host runs `cnnkeras train` (and --resume), not {command}; "
            "use none or mirrored here"
        )


def scope(strategy):
    """Where weights are created (building, loading): a TensorFlow strategy's scope, or
    nothing (multi-host distributes what is built after it joined). Only creation needs it:
    ``fit``, ``evaluate`` and ``compile_for_training`` use the strategy the model was
    created under, and the input pipelines (whose counters are plain variables) stay
    outside it."""
    return strategy.scope() if hasattr(strategy, "scope") else contextlib.nullcontext()


def model_scope(model: keras.Model):
    """The scope of the strategy ``model`` was created under (TensorFlow), or nothing."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def replicas(model: keras.Model) -> int:
    """How many devices share each global batch of ``model``'s training."""
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is not None:
        return strategy.num_replicas_in_sync
    cluster = _multihost.current()
    return cluster.devices if cluster is not None else 1


def synchronize_batch_norm(model: keras.Model) -> int:
    """Make every batch-norm layer (nested models' too) use the global batch's statistics
    across replicas; return how many."""
    count = 0
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


def for_strategy(model: keras.Model, strategy) -> keras.Model:
    """``model`` ready for ``strategy``: batch norm synchronised across mirrored replicas
    (under multi-host, JAX computes it over the global batch already)."""
    if isinstance(strategy, tf.distribute.Strategy):
        synchronize_batch_norm(model)
    return model
