"""TFLite Metadata for an image classifier, inside the ``.tflite`` file, as MediaPipe Tasks, the
TFLite Task Library and ML Kit read it: the input's colour space and normalisation, the class
names as an associated labels file, the score below which an answer is "unknown" (when
training found one for a target accuracy), model name, description, version, author and
licence.

Written with the ``flatbuffers`` package against the published ``metadata_schema.fbs``
(identifier M001), because neither official writer fits the pinned set: tflite-support 0.4.4
pins protobuf < 4 (TensorFlow 2.21 needs 5+), and mediapipe 1.2.2's ``metadata_writers`` fails
to import (``mediapipe.tasks.cc`` is not in the wheel). The tests read what this writes with
MediaPipe's own generated reader and run it in MediaPipe's ``ImageClassifier``.

The graph is untouched: the metadata goes into a buffer of the model named
``TFLITE_METADATA`` and the labels into a zip archive appended to the file, as tflite-support's
``MetadataPopulator`` does; a runtime that ignores them gives bit-identical outputs.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import flatbuffers
import numpy as np

from cnnkeras._files import LABELS_FILE

METADATA_NAME = "TFLITE_METADATA"  # the model metadata entry that runtimes look for
MIN_PARSER_VERSION = "1.0.0"  # every field written here is in the schema's first version
_RGB, _GRAYSCALE = 1, 2  # ColorSpaceType
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # ContentProperties union
_NORMALIZATION_OPTIONS, _SCORE_THRESHOLDING_OPTIONS = 1, 3  # ProcessUnitOptions union
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType


@dataclass(frozen=True)
class ClassifierMetadata:
    """What an app's runtime needs to know about an exported image classifier.

    ``mean`` and ``std`` are the NormalizationOptions: model input = (pixel - mean) / std, for
    pixels in 0..255 (cnnkeras's ``scale`` and ``offset``: std = 1 / scale, mean = -offset /
    scale)."""

    name: str
    description: str
    version: str
    author: str
    license: str
    mean: float
    std: float
    rgb: bool = True
    labels_file: str = LABELS_FILE
    input_min: float = 0.0
    input_max: float = 1.0
    score_threshold: float | None = None  # ScoreThresholdingOptions of the output

    @classmethod
    def of(cls, prep, **about) -> ClassifierMetadata:
        """The metadata of a model whose input is ``prep`` (a ``Preprocessing``): its
        normalisation, colour and range from there, the rest (name, author...) as given."""
        return cls(
            mean=-prep.offset / prep.scale,
            std=1.0 / prep.scale,
            rgb=prep.channels == 3,
            input_min=prep.offset,
            input_max=255 * prep.scale + prep.offset,
            **about,
        )


class _Builder:
    """A flatbuffers builder with the three shapes the metadata schema needs: tables of
    (slot, kind, value), vectors of tables and vectors of floats. Children are made before
    their parent starts (flatbuffers builds bottom-up)."""

    def __init__(self):
        self.b = flatbuffers.Builder(1024)
        self.string = self.b.CreateString

    def table(self, fields: list[tuple[int, str, object]]) -> int:
        b = self.b
        b.StartObject(max((slot + 1 for slot, _, _ in fields), default=0))
        for slot, kind, value in fields:
            prepend = {
                "offset": b.PrependUOffsetTRelativeSlot,
                "byte": b.PrependInt8Slot,
                "float": b.PrependFloat32Slot,
            }[kind]
            prepend(slot, value, 0)
        return b.EndObject()

    def vector(self, offsets: list[int]) -> int:
        self.b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            self.b.PrependUOffsetTRelative(offset)
        return self.b.EndVector()

    def floats(self, values: list[float]) -> int:
        return self.b.CreateNumpyVector(np.asarray(values, np.float32))


def _input_tensor(fb: _Builder, meta: ClassifierMetadata) -> int:
    """The input's TensorMetadata: an image, its colour space, normalisation and range."""
    image_props = fb.table([(0, "byte", _RGB if meta.rgb else _GRAYSCALE)])
    content = fb.table([(0, "byte", _IMAGE_PROPERTIES), (1, "offset", image_props)])
    normalization = fb.table(
        [(0, "offset", fb.floats([meta.mean])), (1, "offset", fb.floats([meta.std]))]
    )
    unit = fb.table([(0, "byte", _NORMALIZATION_OPTIONS), (1, "offset", normalization)])
    stats = fb.table(
        [(0, "offset", fb.floats([meta.input_max])), (1, "offset", fb.floats([meta.input_min]))]
    )
    name, text = fb.string("image"), fb.string("Input image to be classified.")
    units = fb.vector([unit])
    return fb.table(
        [
            (0, "offset", name),
            (1, "offset", text),
            (3, "offset", content),
            (4, "offset", units),
            (5, "offset", stats),
        ]
    )


def _output_tensor(fb: _Builder, meta: ClassifierMetadata) -> int:
    """The output's TensorMetadata: a score for each class, named by the labels file, and
    the score threshold below which MediaPipe Tasks drops a category."""
    labels_name, labels_text = fb.string(meta.labels_file), fb.string("Class names, one a line.")
    labels = fb.table(
        [(0, "offset", labels_name), (1, "offset", labels_text), (2, "byte", _TENSOR_AXIS_LABELS)]
    )
    content = fb.table([(0, "byte", _FEATURE_PROPERTIES), (1, "offset", fb.table([]))])
    stats = fb.table([(0, "offset", fb.floats([1.0])), (1, "offset", fb.floats([0.0]))])
    name, text = fb.string("probability"), fb.string("Probabilities of the classes.")
    files = fb.vector([labels])
    units = []
    if meta.score_threshold is not None:
        thresholding = fb.table([(0, "float", float(meta.score_threshold))])
        kind = (0, "byte", _SCORE_THRESHOLDING_OPTIONS)
        units = [(4, "offset", fb.vector([fb.table([kind, (1, "offset", thresholding)])]))]
    return fb.table(
        [
            (0, "offset", name),
            (1, "offset", text),
            (3, "offset", content),
            *units,
            (5, "offset", stats),
            (6, "offset", files),
        ]
    )


def metadata_bytes(meta: ClassifierMetadata) -> bytes:
    """The ModelMetadata flatbuffer of an image classifier with one input and one output."""
    fb = _Builder()
    image = _input_tensor(fb, meta)
    scores = _output_tensor(fb, meta)
    inputs, outputs = fb.vector([image]), fb.vector([scores])
    subgraph = fb.table([(2, "offset", inputs), (3, "offset", outputs)])
    fields = [fb.string(v) for v in (meta.name, meta.description, meta.version)]
    subgraphs = fb.vector([subgraph])
    author, licence, parser = (
        fb.string(v) for v in (meta.author, meta.license, MIN_PARSER_VERSION)
    )
    root = fb.table(
        [(i, "offset", f) for i, f in enumerate(fields)]
        + [(3, "offset", subgraphs), (4, "offset", author), (5, "offset", licence)]
        + [(7, "offset", parser)]
    )
    fb.b.Finish(root, file_identifier=b"M001")
    return bytes(fb.b.Output())


def populate(model: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """``model`` with ``metadata`` in its TFLITE_METADATA buffer (replacing any earlier one) and
    ``files`` appended as an uncompressed zip archive, which runtimes read in place."""
    # TensorFlow's generated object API for the model schema (tensorflow/lite/python, checked
    # with TensorFlow 2.21); a round trip through it keeps every other field as it was.
    from tensorflow.lite.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(bytearray(_model_part(model)), 0)
    tree.metadata = tree.metadata or []
    entry = next((m for m in tree.metadata if m.name.decode() == METADATA_NAME), None)
    if entry is None:  # a new buffer; populating again reuses the old one
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(tree.buffers)
        tree.buffers.append(schema.BufferT())
        tree.metadata.append(entry)
    tree.buffers[entry.buffer].data = np.frombuffer(metadata, np.uint8)
    b = flatbuffers.Builder(len(model) + len(metadata) + 1024)
    b.Finish(tree.Pack(b), file_identifier=b"TFL3")
    archive = io.BytesIO()
    archive.write(bytes(b.Output()))
    with zipfile.ZipFile(archive, "a", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return archive.getvalue()


def _model_part(blob: bytes) -> bytes:
    """The flatbuffer of a .tflite file without an appended archive of associated files."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            first = min((info.header_offset for info in zf.infolist()), default=len(blob))
        return blob[:first]
    except zipfile.BadZipFile:
        return blob
