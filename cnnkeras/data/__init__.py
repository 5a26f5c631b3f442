"""Datasets by spec (``digits``, ``mnist5k``, ``tfds:NAME``, ``folder:PATH``, ``csv:FILE``),
one tf.data pipeline for all of them, and a health check of a dataset before training on it.

Every dataset is split the same way from a seed: a stratified train/validation/test split
(a dataset's own test split is kept as its test split), so that ``cnnkeras evaluate`` sees
exactly the test images that ``cnnkeras train`` held out.
"""

from cnnkeras.data._check import DataCheck, check_dataset
from cnnkeras.data._check_report import CHECK_FILE, CHECK_PAGE, data_check, write_check
from cnnkeras.data._datasets import (
    DEFAULT_SEED,
    ImageDataset,
    Split,
    TfdsSource,
    absolute_spec,
    load_dataset,
)
from cnnkeras.data._images import read_image
from cnnkeras.data._pipeline import (
    AUGMENTATIONS,
    CACHES,
    DEFAULT_AUGMENT,
    RESIZES,
    DecodeTally,
    Preprocessing,
    SplitImages,
    make_pipeline,
    preprocess_images,
)

__all__ = [
    "AUGMENTATIONS",
    "CACHES",
    "CHECK_FILE",
    "CHECK_PAGE",
    "DEFAULT_AUGMENT",
    "DEFAULT_SEED",
    "RESIZES",
    "DataCheck",
    "DecodeTally",
    "ImageDataset",
    "Preprocessing",
    "Split",
    "SplitImages",
    "TfdsSource",
    "absolute_spec",
    "check_dataset",
    "data_check",
    "load_dataset",
    "make_pipeline",
    "preprocess_images",
    "read_image",
    "write_check",
]
