"""A health check of a dataset before hours of training: what each image is (size, grey or
colour, stored turned, readable) and which images are the same picture, within a class,
under two labels, or in training and in validation/test (leakage: a test score that flatters).

Each image is looked at once, streamed: a 16x16 grey thumbnail, a content hash and its size
are all that is kept (about 2.6 KB an image with the bookkeeping, whatever its pixels). Exact
copies share a content hash. Near copies (re-encoded, resized, brightened, squashed) are pairs
whose thumbnails correlate at ``NEAR`` or more, found by an exact all-pairs product in tiles; a
correlation ignores brightness and contrast, where a perceptual hash such as dHash moved 46 of
its 64 bits on a 10% brighter copy (BENCHMARKS.md). Near-uniform images (sky, a wall) have no
structure to compare and are counted apart; their exact copies are still found."""

from __future__ import annotations

import hashlib
import io
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from cnnkeras import _io
from cnnkeras.data._datasets import SPLIT_WORDS, ImageDataset, files_root
from cnnkeras.data._images import GREY_MODES, exif_orientation
from cnnkeras.errors import UserError

THUMB = 16  # side of the grey thumbnail compared for near copies
NEAR = 0.95  # correlation of two thumbnails at and above which they are one picture
PLAIN = 4.0  # grey levels of spread below which a thumbnail is too plain to compare
TILE = 2048  # thumbnails a side of one block of the all-pairs product
CHUNK = 256  # files a thread looks at per task: bounds what is in flight
SIZE_RATIO = 2.0  # a class whose median side is this far from the others' is flagged
IMBALANCE = 3.0  # largest / smallest class flagged from this ratio

# PIL's transposes for EXIF orientations 2-8, as ImageOps.exif_transpose applies them
_TRANSPOSE = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


@dataclass(frozen=True)
class Look:
    """One image as the check saw it: size as shown (after its EXIF turn), stored colour mode,
    orientation, whether it is stored grey, its content hash and thumbnail."""

    width: int
    height: int
    mode: str
    orientation: int
    grey: bool
    digest: str
    thumb: bytes  # THUMB x THUMB grey, uint8, upright


def _look(small, size: tuple[int, int], mode: str, orientation: int, digest: str) -> Look:
    from PIL import Image

    if orientation in _TRANSPOSE:
        small = small.transpose(Image.Transpose[_TRANSPOSE[orientation]])
        size = (size[1], size[0]) if orientation >= 5 else size
    thumb = small.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)
    grey = mode in GREY_MODES
    return Look(size[0], size[1], mode, orientation, grey, digest, thumb.tobytes())


def look_file(path: str) -> Look | None:
    """A file's look, decoded at the smallest scale the format allows (JPEG: 1/8); None when
    it cannot be read to its last pixel."""
    from PIL import Image

    try:
        data = Path(path).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            size, mode, orientation = image.size, image.mode, exif_orientation(image)
            image.draft("RGB", (4 * THUMB, 4 * THUMB))
            small = image.convert("RGB")  # loads every pixel: a truncated file fails here
    except Exception:  # PIL raises many types for broken files
        return None
    return _look(small, size, mode, orientation, hashlib.blake2b(data, digest_size=16).hexdigest())


def look_array(image: np.ndarray) -> Look:
    """The look of an embedded set's image (H, W, C uint8)."""
    from PIL import Image

    pixels = image[..., 0] if image.shape[-1] == 1 else image
    small = Image.fromarray(np.ascontiguousarray(pixels))
    digest = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()
    mode = "L" if image.shape[-1] == 1 else "RGB"
    return _look(small, (image.shape[1], image.shape[0]), mode, 1, digest)


@dataclass(frozen=True)
class Item:
    """An image of the dataset: its split, label and where it is (file or embedded array)."""

    split: str
    label: int
    path: str | None
    position: int  # in its split


def _items(data: ImageDataset) -> list[Item]:
    items = []
    for split in SPLIT_WORDS:
        part = data.splits[split]
        if part.paths is None and part.images is None:
            raise UserError(
                f"data check reads image folders, label files and the embedded sets; "
                f"{data.spec} is read record by record from TensorFlow Datasets"
            )
        for position, label in enumerate(part.labels.tolist()):
            path = part.paths[position] if part.paths is not None else None
            items.append(Item(split, int(label), path, position))
    return items


def _looks(data: ImageDataset, items: list[Item], threads: int, verbose: int) -> list[Look | None]:
    """Every item's look, files read by ``threads`` threads (PIL and hashlib release the GIL),
    a chunk at a time so that memory stays flat however many files there are."""
    progress = _io.Progress(f"{data.spec}: images checked", verbose)
    if items and items[0].path is None:
        looks = [look_array(data.splits[i.split].images[i.position]) for i in items]
        progress.update(len(looks))
        progress.done()
        return looks
    chunks = [items[k : k + CHUNK] for k in range(0, len(items), CHUNK)]

    def chunk_looks(chunk: list[Item]) -> list[Look | None]:
        return [look_file(item.path) for item in chunk]

    looks: list[Look | None] = []
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for part in pool.map(chunk_looks, chunks):
            looks.extend(part)
            progress.update(len(part))
    progress.done()
    return looks


def near_pairs(thumbs: np.ndarray, near: float = NEAR) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (i < j) of rows of ``thumbs`` (N, THUMB*THUMB) whose correlation is ``near`` or
    more, as index arrays a tile at a time: every pair is compared, TILE x TILE at once, each
    tile normalised as it is used (the uint8 thumbnails are all that is held)."""

    def unit(start: int) -> np.ndarray:
        z = thumbs[start : start + TILE].astype(np.float32)
        z -= z.mean(axis=1, keepdims=True)
        return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-6)

    for a in range(0, len(thumbs), TILE):
        left = unit(a)
        for b in range(a, len(thumbs), TILE):
            i, j = np.nonzero(left @ unit(b).T >= near)
            keep = i + a < j + b
            yield i[keep] + a, j[keep] + b


_ORDER = {name: k for k, name in enumerate(SPLIT_WORDS)}
KINDS = ("leakage", "conflicting labels", "duplicates")  # what a group of one picture is


class _Links:
    """Images joined into groups (union-find) by the pairs found to be one picture. What a
    group is comes from its pairs themselves, never from chains through the group (A like B
    and B like C need not make A and C one picture)."""

    def __init__(self, items: list[Item]):
        self.items, self.parent = items, list(range(len(items)))
        self.kinds: list[tuple[int, str]] = []  # (a member, what one of its pairs is)
        self.leaked: set[int] = set()

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        """``i`` and ``j`` are one picture: the same class twice, two labels, or a later
        split repeating an earlier one (the later image leaked)."""
        a, b = self.items[i], self.items[j]
        self.parent[self.root(i)] = self.root(j)
        if a.label != b.label:
            self.kinds.append((i, "conflicting labels"))
        elif a.split == b.split:
            self.kinds.append((i, "duplicates"))
        if a.split != b.split:
            self.kinds.append((i, "leakage"))
            self.leaked.add(i if _ORDER[a.split] > _ORDER[b.split] else j)

    def groups(self, looks: list[Look | None]) -> list[dict]:
        members: dict[int, list[int]] = {}
        for i, look in enumerate(looks):
            if look is not None:
                members.setdefault(self.root(i), []).append(i)
        kinds: dict[int, set[str]] = {}
        for i, kind in self.kinds:
            kinds.setdefault(self.root(i), set()).add(kind)
        return [
            {
                "members": group,
                "exact": len({looks[i].digest for i in group}) == 1,
                "kinds": [k for k in KINDS if k in kinds.get(key, ())],
            }
            for key, group in members.items()
            if len(group) > 1
        ]


def _link(items: list[Item], looks: list[Look | None]) -> tuple[list[dict], list[int]]:
    """The groups of images that are one picture (exact copies by content hash, near copies
    by thumbnail) and the items that leaked into a later split."""
    links = _Links(items)
    firsts: dict[str, dict[tuple[int, str], int]] = {}  # the first of each class and split
    for i, look in enumerate(looks):
        if look is not None:  # byte-identical files: joined to one of each class and split
            first = firsts.setdefault(look.digest, {})
            for j in first.values():
                links.join(i, j)
            first.setdefault((items[i].label, items[i].split), i)
    usable = [i for i, look in enumerate(looks) if look is not None and not _plain(look)]
    thumbs = np.frombuffer(b"".join(looks[i].thumb for i in usable), np.uint8)
    for first_of, second_of in near_pairs(thumbs.reshape(len(usable), THUMB * THUMB)):
        for i, j in zip(first_of.tolist(), second_of.tolist(), strict=True):
            if looks[usable[i]].digest != looks[usable[j]].digest:
                links.join(usable[i], usable[j])
    return links.groups(looks), sorted(links.leaked)


def _plain(look: Look) -> bool:
    return float(np.frombuffer(look.thumb, np.uint8).std()) < PLAIN


@dataclass
class DataCheck:
    """What ``check_dataset`` found, ready for a summary, a page and a JSON file."""

    spec: str
    class_names: list[str]
    items: list[Item]
    looks: list[Look | None]
    skipped: list[str]  # files the dataset set aside (not images, missing)
    groups: list[dict]  # {"members": item indices, "exact": all byte-identical, "kinds"}
    leaked: list[int]  # items that repeat an image of an earlier split (train, val, test)

    @cached_property
    def unreadable(self) -> list[str]:
        broken = [it.path for it, lk in zip(self.items, self.looks, strict=True) if lk is None]
        return self.skipped + [p for p in broken if p]

    @cached_property
    def counts(self) -> dict:
        kinds = Counter(kind for group in self.groups for kind in group["kinds"])
        return {
            "images": len(self.items),
            "unreadable": len(self.unreadable),
            "turned": sum(1 for lk in self.looks if lk is not None and lk.orientation != 1),
            "grey": sum(1 for lk in self.looks if lk is not None and lk.grey),
            "plain": sum(1 for lk in self.looks if lk is not None and _plain(lk)),
            "duplicate_groups": kinds["duplicates"],
            "conflicting_groups": kinds["conflicting labels"],
            "leaked": len(self.leaked),
        }

    @cached_property
    def classes(self) -> list[dict]:
        """Per class: images per split, median size as shown, smallest side, aspect range,
        grey and turned counts."""
        by_label: dict[int, list] = {label: [] for label in range(len(self.class_names))}
        for item, look in zip(self.items, self.looks, strict=True):
            by_label[item.label].append((item, look))
        rows = []
        for label, name in enumerate(self.class_names):
            mine = by_label[label]
            seen = [lk for _, lk in mine if lk is not None]
            widths = np.array([lk.width for lk in seen] or [0])
            heights = np.array([lk.height for lk in seen] or [0])
            aspect = widths / np.maximum(heights, 1)
            rows.append(
                {
                    "class": name,
                    "splits": {s: sum(1 for it, _ in mine if it.split == s) for s in SPLIT_WORDS},
                    "median_size": [int(np.median(widths)), int(np.median(heights))],
                    "smallest_side": int(np.minimum(widths, heights).min()),
                    "median_side": float(np.median(np.minimum(widths, heights))),
                    "aspect": [round(float(q), 2) for q in np.percentile(aspect, [10, 90])],
                    "grey": sum(1 for lk in seen if lk.grey),
                    "turned": sum(1 for lk in seen if lk.orientation != 1),
                }
            )
        return rows

    def warnings(self) -> list[str]:
        """One line for each thing a user should fix or know before training."""
        counts, classes, out = self.counts, self.classes, []
        sizes = [sum(c["splits"].values()) for c in classes]
        if min(sizes) and max(sizes) / min(sizes) >= IMBALANCE:
            big, small = classes[int(np.argmax(sizes))], classes[int(np.argmin(sizes))]
            out.append(
                f"classes are imbalanced: {big['class']} has {max(sizes)} images, "
                f"{small['class']} {min(sizes)}"
            )
        for c in classes:
            others = [o["median_side"] for o in classes if o is not c]
            typical = float(np.median(others))
            ratio = c["median_side"] / max(typical, 1.0)
            if ratio <= 1 / SIZE_RATIO or ratio >= SIZE_RATIO:
                word = "smaller" if ratio < 1 else "larger"
                out.append(
                    f"class {c['class']}'s images are {word} (median side {c['median_side']:.0f} "
                    f"px) than the others' ({typical:.0f} px): the model may learn the size"
                )
        readable = counts["images"] - (counts["unreadable"] - len(self.skipped))
        if 0 < counts["grey"] < readable:
            shares = ", ".join(
                f"{c['class']} {c['grey'] / max(sum(c['splits'].values()), 1):.0%}" for c in classes
            )
            out.append(
                f"{counts['grey']} image(s) stored grey among colour ones, read as colour "
                f"(grey share: {shares})"
            )
        if counts["unreadable"]:
            out.append(f"{counts['unreadable']} file(s) cannot be read, e.g. {self.unreadable[0]}")
        if counts["duplicate_groups"]:
            out.append(f"{counts['duplicate_groups']} picture(s) appear more than once in a class")
        if counts["conflicting_groups"]:
            out.append(f"{counts['conflicting_groups']} picture(s) appear under two labels or more")
        if counts["leaked"]:
            out.append(
                f"{counts['leaked']} validation/test image(s) also appear in an earlier split "
                "(leakage: the held-out scores flatter); `cnnkeras data check --fix-leakage` "
                "writes a label file without them"
            )
        return out

    def summary(self) -> str:
        """One line: images, classes, sizes, colour and what was found."""
        c = self.counts
        sizes = [sum(row["splits"].values()) for row in self.classes]
        return (
            f"data check: {c['images']:,} images, {len(self.class_names)} classes "
            f"({min(sizes):,} to {max(sizes):,} a class), {c['unreadable']:,} unreadable, "
            f"{c['turned']:,} stored turned, {c['grey']:,} stored grey; pictures repeated in "
            f"a class {c['duplicate_groups']:,}, under two labels {c['conflicting_groups']:,}; "
            f"images leaked into validation/test {c['leaked']:,}"
        )

    def record(self) -> dict:
        """data_check.json: counts, classes, warnings and every group, files relative to the
        dataset's folder."""
        root = files_root(self.spec)

        def where(i: int) -> str | int:
            path = self.items[i].path
            return os.path.relpath(path, root) if path and root else self.items[i].position

        groups = [
            {
                "kinds": group["kinds"],
                "exact": group["exact"],
                "images": [
                    {
                        "file": where(i),
                        "class": self.class_names[self.items[i].label],
                        "split": self.items[i].split,
                    }
                    for i in group["members"]
                ],
            }
            for group in self.groups
        ]
        return {
            "spec": self.spec,
            "summary": self.summary(),
            "counts": self.counts,
            "warnings": self.warnings(),
            "classes": self.classes,
            "unreadable": self.unreadable,
            "near_correlation": NEAR,
            "groups": groups,
            "leaked": [where(i) for i in self.leaked],
        }


def check_dataset(data: ImageDataset, *, threads: int | None = None, verbose: int = 0) -> DataCheck:
    """Look at every image of ``data`` once and find what :class:`DataCheck` reports."""
    items = _items(data)
    looks = _looks(data, items, threads or os.cpu_count() or 1, verbose)
    groups, leaked = _link(items, looks)
    return DataCheck(data.spec, data.class_names, items, looks, list(data.skipped), groups, leaked)
