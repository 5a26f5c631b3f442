"""TFLite (LiteRT) export for phones: float32, float16, dynamic-range and full-integer int8
files with TFLite Metadata (MediaPipe Tasks, the Task Library and ML Kit take them as they are),
labels, preprocessing, golden test inputs, a parity report against the Keras model in the
runtimes apps use, and a model card."""

from cnnkeras._litert import VARIANTS, FlexOpsError, TFLiteModel, convert
from cnnkeras.export._card import bench_infer_text, export_text, parity_cells
from cnnkeras.export._export import (
    DEFAULT_AUTHOR,
    DEFAULT_LICENSE,
    INPUTS,
    bench_infer,
    export_model,
    parity,
    variants_for,
)

__all__ = [
    "DEFAULT_AUTHOR",
    "DEFAULT_LICENSE",
    "INPUTS",
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
