"""What ``check_dataset`` found, written down: data_check.json, data_check.html (one
self-contained page with the images of each finding side by side, so that a user sees the
copies rather than reads about them) and, on request, a label file without the leaked images."""

from __future__ import annotations

import csv
import html
import io
import os
from pathlib import Path

import numpy as np

from cnnkeras import _html, _io
from cnnkeras.data._check import NEAR, PLAIN, DataCheck, check_dataset
from cnnkeras.data._datasets import SPLIT_WORDS, ImageDataset, files_root, load_dataset
from cnnkeras.data._images import read_image
from cnnkeras.errors import UserError

CHECK_FILE = "data_check.json"
CHECK_PAGE = "data_check.html"
EXAMPLES = 12  # groups shown of each finding
MEMBERS = 8  # images shown of each group
SIDE = 96  # pixels a side of each image shown
TITLES = {
    "leakage": "Images in training and in validation/test",
    "conflicting labels": "The same picture under two labels",
    "duplicates": "The same picture twice in a class",
}


def _thumbnail(data: ImageDataset, split: str, position: int) -> bytes:
    from PIL import Image, ImageOps

    part = data.splits[split]
    if part.paths is not None:
        pixels = read_image(part.paths[position])
    else:
        pixels = part.images[position]
        pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    image = ImageOps.contain(Image.fromarray(np.ascontiguousarray(pixels)), (SIDE, SIDE))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _figure(check: DataCheck, data: ImageDataset, index: int) -> str:
    item = check.items[index]
    name = Path(item.path).name if item.path else f"#{item.position}"
    caption = f"{item.split} · {check.class_names[item.label]} · {name}"
    image = _html.img(name, _thumbnail(data, item.split, item.position))
    return (
        f"<figure style='display:inline-block;margin:4px;width:{SIDE + 8}px'>{image}"
        f"<figcaption style='font-size:small'>{html.escape(caption)}</figcaption></figure>"
    )


def _findings(check: DataCheck, data: ImageDataset, kind: str) -> list[str]:
    groups = [g for g in check.groups if kind in g["kinds"]]
    out = [f"<h2>{TITLES[kind]}: {len(groups)}</h2>"]
    for group in groups[:EXAMPLES]:
        members = group["members"]
        how = "byte-identical files" if group["exact"] else "near copies"
        more = f" (and {len(members) - MEMBERS} more)" if len(members) > MEMBERS else ""
        out.append(f"<p>{len(members)} images, {how}{more}:<br>")
        out += [_figure(check, data, i) for i in members[:MEMBERS]]
        out.append("</p>")
    if len(groups) > EXAMPLES:
        out.append(f"<p>... and {len(groups) - EXAMPLES} more (all in {CHECK_FILE})</p>")
    return out


def check_page(check: DataCheck, data: ImageDataset) -> str:
    """The page: summary, warnings, a table of the classes, then each finding's images."""
    warnings = check.warnings() or ["nothing to fix"]
    body = [
        f"<h1>Data check: {html.escape(check.spec)}</h1>",
        f"<p>{html.escape(check.summary())}</p>",
        "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>",
        "<h2>Classes</h2>",
    ]
    header = [
        "class",
        *SPLIT_WORDS,
        "median size",
        "smallest side",
        "aspect 10-90%",
        "grey",
        "stored turned",
    ]
    rows = [
        [
            c["class"],
            *(c["splits"][s] for s in SPLIT_WORDS),
            "x".join(map(str, c["median_size"])),
            c["smallest_side"],
            "-".join(f"{a:.2f}" for a in c["aspect"]),
            c["grey"],
            c["turned"],
        ]
        for c in check.classes
    ]
    body += _html.table(header, rows)
    for kind in TITLES:
        body += _findings(check, data, kind)
    if check.unreadable:
        listed = "".join(f"<li>{html.escape(p)}</li>" for p in check.unreadable[:50])
        body.append(f"<h2>Unreadable files: {len(check.unreadable)}</h2><ul>{listed}</ul>")
    body.append(
        f"<p>How: exact copies share a content hash; near copies have 16x16 grey thumbnails "
        f"that correlate at {NEAR} or more (re-encoded, resized, brightened, squashed copies; "
        f"crops of more than a few percent are not). {check.counts['plain']} near-uniform "
        f"images (thumbnail spread under {PLAIN:.0f} grey levels) are compared for exact "
        "copies only.</p>"
    )
    return _html.page(f"Data check: {check.spec}", body)


def write_check(folder: str | Path, check: DataCheck, data: ImageDataset) -> Path:
    """data_check.json and data_check.html into ``folder``; the page's path."""
    folder = Path(folder)
    _io.write_json(folder / CHECK_FILE, check.record())
    _io.write_text(folder / CHECK_PAGE, check_page(check, data))
    return folder / CHECK_PAGE


def write_without_leakage(check: DataCheck, path: Path) -> int:
    """A label file (path,label,split) of every readable image but the leaked ones, paths
    relative to its folder; the number of images left out."""
    dropped = set(check.leaked)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "label", "split"])
    for i, (item, look) in enumerate(zip(check.items, check.looks, strict=True)):
        if i not in dropped and look is not None:
            rel = os.path.relpath(item.path, path.parent.absolute())
            writer.writerow([rel, check.class_names[item.label], item.split])
    _io.write_text(path, out.getvalue())
    return len(dropped)


FIXED_FILE = "labels_without_leakage.csv"


def data_check(
    spec: str, out: str | Path, *, seed: int, fix_leakage: bool = False, verbose: int = 0
) -> dict:
    """``cnnkeras data check``: the dataset split as ``train`` would split it (same seed),
    checked, written to ``out``; with ``fix_leakage`` a label file without the leaked images.
    Returns the record with where the files went."""
    if fix_leakage and files_root(spec) is None:
        raise UserError(
            "`fix_leakage` writes a label file of image files: give folder:PATH or csv:FILE"
        )
    _io.check_writable(out)
    data = load_dataset(spec, seed=seed, verbose=verbose)
    check = check_dataset(data, verbose=verbose)
    result = {**check.record(), "html": str(write_check(out, check, data))}
    if fix_leakage:
        if not check.leaked:
            result["fixed"] = None
        else:
            fixed = Path(out) / FIXED_FILE
            write_without_leakage(check, fixed)
            result["fixed"] = str(fixed)
    return result
