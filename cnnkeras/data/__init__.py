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
    every_image,
    load_dataset,
)
from cnnkeras.data._images import read_image
from cnnkeras.data._pipeline import (
    AUGMENTATIONS,
    CACHE_BUDGET_MB,
    CACHES,
    DEFAULT_AUGMENT,
    MIX_STRENGTHS,
    MIXING,
    RESIZES,
    ROTATION,
    TRANSLATION,
    ZOOM,
    DecodeTally,
    Preprocessing,
    SplitImages,
    check_augmentations,
    make_pipeline,
    preprocess_images,
    raw_images,
    resize_image,
    resolve_cache,
)
from cnnkeras.data._preview import batch_png

__all__ = [
    "AUGMENTATIONS",
    "CACHES",
    "CACHE_BUDGET_MB",
    "CHECK_FILE",
    "CHECK_PAGE",
    "DEFAULT_AUGMENT",
    "DEFAULT_SEED",
    "MIXING",
    "MIX_STRENGTHS",
    "RESIZES",
    "ROTATION",
    "TRANSLATION",
    "ZOOM",
    "DataCheck",
    "DecodeTally",
    "ImageDataset",
    "Preprocessing",
    "Split",
    "SplitImages",
    "TfdsSource",
    "absolute_spec",
    "batch_png",
    "check_augmentations",
    "check_dataset",
    "data_check",
    "every_image",
    "load_dataset",
    "make_pipeline",
    "preprocess_images",
    "raw_images",
    "read_image",
    "resize_image",
    "resolve_cache",
    "write_check",
]
