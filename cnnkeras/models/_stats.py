"""Per-layer output shapes, parameters and multiply-accumulates (MACs) of a Keras model.

MACs count the multiplications of convolution, depthwise convolution and dense layers for one
image, the convention of the papers' FLOPs tables (a multiply-add counted once).
"""

from __future__ import annotations

import math

import keras
from keras import layers


def _shape(tensor) -> tuple:
    shapes = tensor if isinstance(tensor, (list, tuple)) else [tensor]
    out = [tuple(t.shape[1:]) for t in shapes]
    return out[0] if len(out) == 1 else tuple(out)


def layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-accumulates of one layer for a batch of one."""
    if isinstance(layer, layers.DepthwiseConv2D):  # before Conv2D: a subclass in some versions
        out = layer.output.shape
        kh, kw = layer.kernel_size
        return math.prod(out[1:3]) * kh * kw * layer.input.shape[-1] * layer.depth_multiplier
    if isinstance(layer, layers.SeparableConv2D):
        out = layer.output.shape
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1]
        depthwise = math.prod(out[1:3]) * kh * kw * cin * layer.depth_multiplier
        return depthwise + math.prod(out[1:3]) * cin * layer.depth_multiplier * out[-1]
    if isinstance(layer, layers.Conv2D):
        out = layer.output.shape
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1] // layer.groups
        return math.prod(out[1:3]) * kh * kw * cin * out[-1]
    if isinstance(layer, layers.Dense):
        out = layer.output.shape
        return math.prod(out[1:-1]) * layer.input.shape[-1] * out[-1]
    return 0


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer: name, type, output shape, parameters and MACs."""
    rows = []
    for layer in model.layers:
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": list(_shape(layer.output)),
                "params": int(layer.count_params()) if layer.built else 0,
                "macs": int(layer_macs(layer)),
            }
        )
    return rows


def count_macs(model: keras.Model) -> int:
    """Total multiply-accumulates of ``model`` for one image."""
    return sum(layer_macs(layer) for layer in model.layers)


def model_totals(model: keras.Model) -> dict:
    """Parameters (all, and trainable) and multiply-accumulates for one image."""
    return {
        "params": int(model.count_params()),
        "trainable_params": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        "macs": count_macs(model),
    }


def zoo_table(pattern: str = "*", measure: bool = False) -> list[dict]:
    """One row per registered model matching ``pattern``: family, paper, canonical input,
    parameters and MACs (from the pinned table, or built and counted with ``measure``)."""
    from cnnkeras.models._factory import create_model
    from cnnkeras.models._metadata import STATS
    from cnnkeras.models._registry import list_models, model_info

    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        if measure:
            totals = model_totals(create_model(name))
            params, macs = totals["params"], totals["macs"]
        else:
            params, macs = STATS[name].params, STATS[name].macs
        rows.append(
            {
                "name": name,
                "family": info.family,
                "paper": info.paper,
                "input_shape": list(info.input_shape),
                "num_classes": info.num_classes,
                "params": params,
                "macs": macs,
                "imagenet_weights": info.keras_application is not None,
            }
        )
    return rows


def human(n: float) -> str:
    """1234567 -> '1.23M': the papers' way of writing parameter and MAC counts."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def zoo_text(rows: list[dict]) -> str:
    """The rows of ``zoo_table`` as the table ``cnnkeras models`` prints."""
    lines = [f"{'name':<17}{'family':<14}{'input':<13}{'params':>10}{'MACs':>10}  paper"]
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        lines.append(
            f"{r['name']:<17}{r['family']:<14}{shape:<13}{human(r['params']):>10}"
            f"{human(r['macs']):>10}  {r['paper']}"
        )
    return "\n".join(lines)


def summary_text(rows: list[dict], total: dict) -> str:
    """``layer_table`` and ``model_totals`` as the table ``cnnkeras summary`` prints."""
    lines = [f"{'layer':<32}{'type':<24}{'output':<20}{'params':>12}{'MACs':>14}"]
    for r in rows:
        shape = "x".join(str(d) for d in r["output_shape"]) if r["output_shape"] else "-"
        lines.append(f"{r['name']:<32}{r['type']:<24}{shape:<20}{r['params']:>12,}{r['macs']:>14,}")
    lines.append(
        f"total: {total['params']:,} parameters ({total['trainable_params']:,} trainable), "
        f"{total['macs']:,} MACs ({human(total['macs'])}) for one image"
    )
    return "\n".join(lines)
