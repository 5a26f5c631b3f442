"""Conversion to TFLite (LiteRT) with builtin operations only, and a runner around the LiteRT
interpreter that applies the quantization of a file's input and output for the caller."""

from __future__ import annotations

import contextlib
import functools
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras.errors import UserError

VARIANTS = ("float32", "float16", "dynamic", "int8")


class FlexOpsError(UserError):
    """The model needs TensorFlow (Flex) kernels, which a phone's LiteRT runtime lacks."""

    def __init__(self, ops: list[str]):
        self.ops = ops
        super().__init__(
            f"the model needs TensorFlow fallback (Flex) ops, which phone runtimes lack: "
            f"{', '.join(ops)}; replace the layers that use them"
        )


# ITU-R 601 luma, the weights of tf.image.rgb_to_grayscale, which the pipeline uses, made to
# sum to 1 (they sum to 0.9999): the pipeline rounds its grey levels, which keeps a grey
# pixel's level; so does the exported file only with weights that sum to 1
LUMA = tuple(w / 0.9999 for w in (0.2989, 0.5870, 0.1140))


def convert(
    model,
    variant: str = "float32",
    representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
    int_io: str = "uint8",
    rgb: bool = False,
) -> bytes:
    """Keras model -> .tflite bytes (batch-1 input), through a SavedModel as Keras 3 does.

    ``rgb``: a grey (one-channel) model gets the pipeline's luma conversion in front, so that it
    takes the RGB frames phones give; ``representative`` then yields RGB input too."""
    return convert_variants(model, (variant,), representative, int_io, rgb)[variant]


def convert_variants(
    model,
    variants: Iterable[str],
    representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
    int_io: str = "uint8",
    rgb: bool = False,
) -> dict[str, bytes]:
    """``convert`` for several variants from one SavedModel, written once rather than once a
    variant (tracing and writing it is a few seconds for a small model)."""
    variants = tuple(variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    with saved_model(model, rgb) as saved:
        return {v: _convert_saved(saved, v, representative, int_io) for v in variants}


def _convert_saved(saved: str, variant: str, representative, int_io: str) -> bytes:
    converter = make_converter(saved, variant, representative, int_io)
    try:
        with _io.quiet_stderr():  # the converter logs its quantization settings
            return converter.convert()
    except Exception as err:  # the converter raises ConverterError with the op list
        match = re.search(r"TF Select ops: ([^\n]+)", str(err))
        if match:
            ops = sorted({op.strip() for op in match.group(1).split(",")})
            raise FlexOpsError(ops) from None
        raise UserError(f"TFLite conversion failed ({variant}): {str(err)[:300]}") from err


@contextlib.contextmanager
def saved_model(model, rgb: bool = False) -> Iterator[str]:
    """The model's batch-1 inference function as a temporary SavedModel folder."""
    import keras
    import tensorflow as tf

    height, width, channels = model.input_shape[1:]
    call = functools.partial(model.__call__, training=False)
    if rgb and channels == 1:
        weights = tf.constant(np.reshape(LUMA, (1, 1, 3, 1)), tf.float32)

        def call(image):
            return model(tf.nn.conv2d(image, weights, 1, "VALID"), training=False)

        channels = 3
    with tempfile.TemporaryDirectory() as saved:
        archive = keras.export.ExportArchive()
        archive.track(model)
        spec = tf.TensorSpec((1, height, width, channels), tf.float32, name="image")
        archive.add_endpoint("serve", call, input_signature=[spec])
        archive.write_out(saved, verbose=False)
        yield saved


def make_converter(
    saved: str,
    variant: str,
    representative: Callable[[], Iterable[list[np.ndarray]]] | None,
    int_io: str = "uint8",
):
    """A TFLiteConverter of a SavedModel for ``variant``, builtin ops only."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        if representative is None:
            raise UserError("int8 quantization needs a dataset for calibration (`dataset`)")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = {"uint8": tf.uint8, "int8": tf.int8}[int_io]
        converter.inference_output_type = converter.inference_input_type
    return converter


class TFLiteModel:
    """A .tflite file in the LiteRT interpreter; ``predict`` takes float model input."""

    def __init__(self, path_or_bytes: str | Path | bytes, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        if not isinstance(path_or_bytes, bytes) and not Path(path_or_bytes).is_file():
            raise UserError(f"model file {path_or_bytes} does not exist")
        try:
            with _io.quiet_stderr():  # LiteRT announces its XNNPACK delegate
                if isinstance(path_or_bytes, bytes):
                    self.interpreter = Interpreter(
                        model_content=path_or_bytes, num_threads=num_threads
                    )
                else:
                    self.interpreter = Interpreter(
                        model_path=str(path_or_bytes), num_threads=num_threads
                    )
                self.interpreter.allocate_tensors()
        except ValueError as err:
            raise UserError(f"not a valid .tflite file: {err}") from err
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.input["shape"][1:])

    @property
    def quantization(self) -> dict:
        def q(detail):
            scale, zero = detail["quantization"]
            return {
                "dtype": np.dtype(detail["dtype"]).name,
                "scale": float(scale),
                "zero_point": int(zero),
            }

        return {"input": q(self.input), "output": q(self.output)}

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        """One already-typed input tensor (1, H, W, C) in, the raw output out."""
        expected = tuple(int(d) for d in self.input["shape"])
        if tuple(x.shape) != expected:
            raise UserError(f"input shape {tuple(x.shape)} does not match the model's {expected}")
        if x.dtype != self.input["dtype"]:
            raise UserError(
                f"input dtype {x.dtype} does not match the model's "
                f"{np.dtype(self.input['dtype']).name}"
            )
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Float model input (N, H, W, C) -> float scores (N, K), quantizing as recorded."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.input_shape:
            raise UserError(
                f"input of shape {tuple(batch.shape)} does not fit the model's "
                f"(N, {', '.join(map(str, self.input_shape))})"
            )
        if not np.issubdtype(batch.dtype, np.floating):
            raise UserError(f"predict takes float model input, got {batch.dtype}")
        in_dtype = self.input["dtype"]
        scale, zero = self.input["quantization"]
        out_scale, out_zero = self.output["quantization"]
        results = []
        for image in batch:
            x = image[None]
            if np.issubdtype(in_dtype, np.integer):
                info = np.iinfo(in_dtype)
                x = np.clip(np.round(x / scale + zero), info.min, info.max)
            y = self.invoke_raw(x.astype(in_dtype))
            if np.issubdtype(y.dtype, np.integer):
                y = (y.astype(np.float32) - out_zero) * out_scale
            results.append(y[0].astype(np.float32))
        return np.stack(results)
