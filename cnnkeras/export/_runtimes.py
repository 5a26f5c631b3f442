"""The runtimes apps use, as judges of an export: LiteRT's ``CompiledModel`` API (LiteRT 2 apps,
the door to GPU and NPU) and MediaPipe Tasks' ``ImageClassifier`` (Android, iOS and web apps:
it reads the file's metadata, resizes the camera frame itself and names the classes)."""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras._litert import TFLiteModel

MEDIAPIPE_MISSING = "not measured: MediaPipe Tasks is not installed (pip install mediapipe)"


def _close_stderr() -> None:
    """LiteRT's accelerator registry logs its teardown from C++ destructors that run after
    Python has finished; stderr is closed for them (atexit handlers run before)."""
    if not os.environ.get("CNNKERAS_VERBOSE"):
        sys.stderr.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


class CompiledModelRunner(TFLiteModel):
    """A .tflite file in LiteRT's CompiledModel API on the CPU, with ``TFLiteModel``'s
    interface (its input and output details come from the interpreter)."""

    def __init__(self, blob: bytes):
        from ai_edge_litert.compiled_model import CompiledModel

        super().__init__(blob)
        atexit.unregister(_close_stderr)  # registered once, however many runners
        atexit.register(_close_stderr)
        with _io.quiet_stderr():  # LiteRT logs each accelerator it looks for, found or not
            self.compiled = CompiledModel.from_buffer(blob)
            self._inputs = self.compiled.create_input_buffers(0)
            self._outputs = self.compiled.create_output_buffers(0)

    def close(self) -> None:
        """Release the compiled model and its LiteRT environment (quietly, as it logs)."""
        with _io.quiet_stderr():
            self._inputs = self._outputs = None
            environment = self.compiled.environment
            self.compiled.close()
            environment.close()
            self.compiled = None
            gc.collect()

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        with _io.quiet_stderr():  # the first run sets up LiteRT's accelerators, and says so
            self._inputs[0].write(np.ascontiguousarray(x))
            self.compiled.run_by_index(0, self._inputs, self._outputs)
        shape = tuple(int(d) for d in self.output["shape"])
        return self._outputs[0].read(int(np.prod(shape)), self.output["dtype"]).reshape(shape)


def mediapipe_available() -> bool:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


# MediaPipe reads a score threshold <= 0 as unset and takes the metadata's (measured with
# mediapipe 1.2.2); the smallest positive float32 overrides it and keeps every score but an
# exact 0 (which an int8 output can give: such a category is then not reported at all).
KEEP_EVERY_SCORE = float(np.finfo(np.float32).tiny)


def mediapipe_scores(
    path: str | Path,
    images: Iterable[np.ndarray | str | Path],
    num_classes: int,
    score_threshold: float | None = None,
) -> tuple[np.ndarray, list[str]]:
    """MediaPipe Tasks' ImageClassifier on each image (uint8 pixels, grey ones given as RGB as a
    camera gives them, or a file): the scores of every class, and the category names it
    reported, by class index. Files are decoded by PIL, as an app's platform decoder would:
    ``mp.Image.create_from_file`` of mediapipe 1.2.2 garbles the first dozen pixels of a JPEG
    (measured against PIL, OpenCV and TensorFlow, which agree within 5 grey levels).

    ``score_threshold`` None leaves the threshold to the file's metadata, as in an app that
    sets none (a category dropped below it scores 0 here, and is not named);
    ``KEEP_EVERY_SCORE`` overrides a file's threshold to measure its scores."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions

    from cnnkeras.data import read_image

    options = ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        max_results=-1,
        score_threshold=score_threshold,
    )
    rows, names = [], [""] * num_classes
    with _io.quiet_stderr(), ImageClassifier.create_from_options(options) as classifier:
        # MediaPipe logs its graph and LiteRT set-up through C++; its errors are exceptions
        for image in images:
            if isinstance(image, (str, Path)):
                image = read_image(image)  # upright, as a phone's gallery shows it
                image = image[..., None] if image.ndim == 2 else image
            rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
            frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            row = np.zeros(num_classes, np.float32)
            for category in classifier.classify(frame).classifications[0].categories:
                row[category.index] = category.score
                names[category.index] = category.category_name
            rows.append(row)
    return np.stack(rows), names
