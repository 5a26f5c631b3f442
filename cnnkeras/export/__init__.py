"""TFLite (LiteRT) export for phones: float32, float16, dynamic-range and full-integer int8
files with labels, preprocessing, golden test inputs, a parity report against the Keras model
and a model card."""

from cnnkeras._litert import VARIANTS, FlexOpsError, TFLiteModel, convert
from cnnkeras.export._export import (
    bench_infer,
    bench_infer_text,
    export_model,
    export_text,
    parity,
    parity_cells,
    variants_for,
)

__all__ = [
    "VARIANTS",
    "FlexOpsError",
    "TFLiteModel",
    "bench_infer",
    "bench_infer_text",
    "convert",
    "export_model",
    "export_text",
    "parity",
    "parity_cells",
    "variants_for",
]
