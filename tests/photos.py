"""A small folder of real colour photographs for tests and benchmarks, built offline.

scikit-learn ships two photographs (a pagoda above a lake, a dahlia) and matplotlib one (Grace
Hopper before a flag). Each class is one region of one photograph: random crops of it, of
random size and position, resized to odd sizes between 30 and 125 pixels and saved as JPEG
at a random quality. The classes share colours and textures (red roof and red flag stripes,
trees and leaves), so a model must learn more than a mean colour; random arrays and MNIST
catch none of the failures such a folder does (colour, odd sizes, JPEG, few images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# class: (photograph, region (left, top, right, bottom) where crop centres are drawn)
REGIONS = {
    "pagoda": ("china", (110, 60, 320, 360)),
    "trees": ("china", (420, 300, 640, 427)),
    "sky": ("china", (360, 0, 640, 160)),
    "dahlia": ("flower", (200, 110, 420, 340)),
    "leaves": ("flower", (0, 0, 160, 427)),
    "flag": ("hopper", (0, 0, 130, 380)),
}


def _photographs() -> dict[str, Image.Image]:
    import matplotlib.cbook
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    photos = {
        Path(name).stem: Image.fromarray(image)
        for name, image in zip(bunch.filenames, bunch.images, strict=True)
    }
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos["hopper"] = Image.open(f).convert("RGB")
    return photos


def _square_box(image: Image.Image, region, rng, sides: tuple[int, int]) -> tuple[int, ...]:
    """A square box in ``image`` with a side in ``sides`` centred at a random point of
    ``region`` (moved inside the image where it would stick out)."""
    left, top, right, bottom = region
    side = int(rng.integers(*sides))
    cx, cy = rng.integers(left, right), rng.integers(top, bottom)
    x0 = int(np.clip(cx - side // 2, 0, image.width - side))
    y0 = int(np.clip(cy - side // 2, 0, image.height - side))
    return (x0, y0, x0 + side, y0 + side)


def _overlap(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Intersection over union of two boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def make_photo_folder(
    root: str | Path, per_class: int = 45, seed: int = 0, large: int = 0, distinct: bool = False
) -> Path:
    """Write ``per_class`` JPEG crops for each of the six classes into ``root/<class>/``, and
    ``large`` more a class at 1,000 to 1,400 pixels a side (as phones store photos: a resizer
    that samples a few pixels of each output pixel sees them differently from one that
    averages). Crops near an edge of their photograph can nearly coincide (the same picture
    resized twice, which ``cnnkeras data check`` rightly calls near copies); ``distinct``
    draws again any crop that overlaps an earlier one of its class by more than a third."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    photos = _photographs()
    for name, (photo, region) in REGIONS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        boxes: list[tuple[int, ...]] = []
        for i in range(per_class):
            box = _square_box(photos[photo], region, rng, (40, 161))
            while distinct and any(_overlap(box, other) > 1 / 3 for other in boxes):
                box = _square_box(photos[photo], region, rng, (40, 161))
            boxes.append(box)
            crop = photos[photo].crop(box)
            size = (int(rng.integers(30, 126)), int(rng.integers(30, 126)))
            crop = crop.resize(size, Image.Resampling.BILINEAR)
            crop.save(folder / f"{name}_{i:03d}.jpg", quality=int(rng.integers(70, 96)))
    big = np.random.default_rng(seed + 1)  # the small images stay those of ``seed``
    for name, (photo, region) in REGIONS.items():
        for i in range(large):
            crop = photos[photo].crop(_square_box(photos[photo], region, big, (100, 201)))
            size = (int(big.integers(1000, 1401)), int(big.integers(1000, 1401)))
            crop = crop.resize(size, Image.Resampling.BICUBIC)
            crop.save(root / name / f"{name}_large_{i:02d}.jpg", quality=90)
    return root


if __name__ == "__main__":
    import sys

    print(make_photo_folder(sys.argv[1] if len(sys.argv) > 1 else "photos"))
