"""int8 that can ship: when full-integer quantization loses too much accuracy, find the layers
responsible and keep the fewest of them in float.

TensorFlow's ``QuantizationDebugger`` calibrates the model once. Each layer is then ranked by
what it does to the model's output when it alone is in int8 (mean absolute score error against
the float model on a sample of images): the damage int8 does, measured where it shows.
Per-layer error statistics mislead: TensorFlow's guide ranks by RMSE over the quantization
step, which is small exactly where one outlier channel stretches a layer's range and zeroes
all the others (tests/test_phone.py builds such a model). The fewest layers from the top of
the ranking that bring the accuracy within the bar are kept in float: doubling, then
bisection. ai-edge-quantizer would need a new dependency for the same search.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from cnnkeras._litert import TFLiteModel, make_converter, saved_model

SENSITIVITY_IMAGES = 64  # images that rank the layers (each layer: one quantization, one pass)


def _quantize(calibrated: bytes, float_layers: list[str]) -> bytes:
    """The calibrated model quantized to int8 except ``float_layers`` (tensor names); input and
    output stay float. TensorFlow's ``mlir_quantize`` is private (checked with TF 2.21): it is
    what ``QuantizationDebugger.get_nondebug_quantized_model`` calls, without rebuilding the
    debug model for each set of layers."""
    from tensorflow.lite.python import convert

    return convert.mlir_quantize(calibrated, denylisted_nodes=list(float_layers))


def layer_names(calibrated: bytes) -> list[str]:
    """The output tensor names of the calibrated model's operations, in graph order: the names
    ``mlir_quantize`` matches (the debugger's own statistics name some differently)."""
    interpreter = TFLiteModel(calibrated).interpreter
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    names = (tensors[i] for op in interpreter._get_ops_details() for i in op["outputs"])
    return list(dict.fromkeys(names))  # some operations share an output name


def rank_layers(calibrated: bytes, names: list[str], float_blob: bytes, images) -> list[str]:
    """``names``, the layer whose int8 harms the output most first."""
    reference = TFLiteModel(float_blob).predict(images)

    def harm(name: str) -> float:  # this layer alone in int8, every other in float
        quantized = TFLiteModel(_quantize(calibrated, [n for n in names if n != name]))
        return float(np.abs(quantized.predict(images) - reference).mean())

    return sorted(names, key=harm, reverse=True)


def repair_int8(
    model,
    representative: Callable[[], Iterable[list[np.ndarray]]],
    accuracy_of: Callable[[bytes], float],
    target: float,
    rgb: bool = False,
) -> dict | None:
    """An int8 model with the fewest harmful layers in float whose ``accuracy_of`` reaches
    ``target``: {"blob", "layers" (how many were ranked), "kept_float", "trials": [[layers
    kept, accuracy], ...]}, or None where
    even every layer but one in float misses it. Input and output stay float (only the body is
    quantized), as in the float32 file."""
    import tensorflow as tf

    images = np.concatenate([batch[0] for batch in representative()][:SENSITIVITY_IMAGES])
    with saved_model(model, rgb) as saved:
        float_blob = make_converter(saved, "float32", None).convert()
        converter = make_converter(saved, "float32", None)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative
        )
    calibrated = debugger.calibrated_model
    ranked = rank_layers(calibrated, layer_names(calibrated), float_blob, images)
    tried: dict[int, tuple[bytes, float]] = {}

    def trial(k: int) -> bool:
        if k not in tried:
            blob = _quantize(calibrated, ranked[:k])
            tried[k] = (blob, accuracy_of(blob))
        return tried[k][1] >= target

    most = len(ranked) - 1  # every layer in float is the float32 file
    high = 1
    while not trial(min(high, most)):
        if high >= most:
            return None
        high *= 2
    high, low = min(high, most), high // 2  # low failed (or is 0)
    while high - low > 1:
        middle = (low + high) // 2
        if trial(middle):
            high = middle
        else:
            low = middle
    return {
        "blob": tried[high][0],
        "layers": len(ranked),
        "kept_float": ranked[:high],
        "trials": [[k, acc] for k, (_, acc) in sorted(tried.items())],
    }
