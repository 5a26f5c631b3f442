"""What the model sees: the first images of a run's first training step, after its
augmentation, MixUp and CutMix, with their (mixed) labels, as one PNG grid. Drawn with PIL,
not matplotlib, so that every run can afford one (``train_batch.png``)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from cnnkeras import _io
from cnnkeras.data._datasets import Split
from cnnkeras.data._pipeline import Preprocessing, make_pipeline

CELL = 112  # pixels a side of each image in the grid
CAPTION = 30  # pixels of text under each image: a line for each of up to two classes


def first_batch(
    split: Split,
    num_classes: int,
    prep: Preprocessing,
    *,
    augment: Sequence[str],
    mix: dict[str, float],
    seed: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The images (model input) and label weights of training's first step: each epoch's
    draws are a function of (seed, epoch, step), so a pipeline of its own gives them."""
    ds = make_pipeline(
        split,
        prep,
        num_classes,
        batch_size=batch_size,
        training=True,
        augment=augment,
        mix=mix,
        seed=seed,
        epoch=0,
        cache="none",
    )
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


def label_text(weights: np.ndarray, class_names: Sequence[str]) -> str:
    """'sky', or the two largest shares of a mixed label, e.g. '0.62 sky + 0.38 flag'."""
    order = np.argsort(weights)[::-1]
    if weights[order[0]] >= 0.995:
        return _io.shown(class_names[order[0]])
    return " + ".join(
        f"{weights[i]:.2f} {_io.shown(class_names[i])}" for i in order[:2] if weights[i] > 0
    )


def grid_png(
    images: np.ndarray, captions: Sequence[str], prep: Preprocessing, columns: int = 4
) -> bytes:
    """``images`` (N, H, W, C), model input made by ``prep``, as the pixels they stand for
    (augmentation's fill and MixUp's blend included), in a grid with a caption under each."""
    from PIL import Image, ImageDraw

    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * CELL, rows * (CELL + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (image, caption) in enumerate(zip(images, captions, strict=True)):
        pixels = np.clip((image - prep.offset) / prep.scale, 0, 255)
        pixels = np.repeat(pixels, 3, -1) if pixels.shape[-1] == 1 else pixels[..., :3]
        tile = Image.fromarray(pixels.round().astype(np.uint8)).resize((CELL, CELL))
        x, y = (k % columns) * CELL, (k // columns) * (CELL + CAPTION)
        sheet.paste(tile, (x, y))
        for line, text in enumerate(caption.split(" + ")[:2]):
            draw.text((x + 3, y + CELL + 3 + 12 * line), text[:20], fill="black")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def batch_png(
    split: Split,
    class_names: Sequence[str],
    prep: Preprocessing,
    *,
    augment: Sequence[str],
    mix: dict[str, float],
    seed: int,
    batch_size: int,
    count: int = 16,
) -> bytes:
    """The first ``count`` images of training's first step as a captioned PNG grid."""
    x, y = first_batch(
        split,
        len(class_names),
        prep,
        augment=augment,
        mix=mix,
        seed=seed,
        batch_size=batch_size,
    )
    return grid_png(x[:count], [label_text(w, class_names) for w in y[:count]], prep)
