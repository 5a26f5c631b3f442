"""Where `cnnkeras data check` draws the line between one picture and two: the correlation of
16x16 grey thumbnails, measured on real photos, beside dHash (64 bits on a 9x8 thumbnail).

Folders of tests/photos.py: the ``distinct`` one (no two crops of a class overlap by more than
a third: every pair is two pictures) and the default one (crops near a photograph's edge can
coincide). For each textured photo of the distinct folder, copies as users make them
(re-encoded, resized, brightened, squashed, cropped) are compared with it; every pair of the
distinct folder gives the false-alarm side.

    python tests/benchmarks/data_check_thresholds.py --root /tmp/check-thresholds
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).parents[1]))
from photos import make_photo_folder

from cnnkeras.data._check import NEAR, PLAIN, look_file


def dhash(image: Image.Image) -> np.ndarray:
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), np.int16)
    return (grey[:, 1:] > grey[:, :-1]).ravel()


def copies(image: Image.Image) -> dict[str, Image.Image]:
    w, h = image.size
    jpeg = io.BytesIO()
    image.save(jpeg, "JPEG", quality=40)
    return {
        "JPEG quality 40": Image.open(io.BytesIO(jpeg.getvalue())),
        "half the size": image.resize((max(8, w // 2), max(8, h // 2))),
        "twice the size": image.resize((w * 2, h * 2)),
        "10% brighter": ImageEnhance.Brightness(image).enhance(1.1),
        "10% darker": ImageEnhance.Brightness(image).enhance(0.9),
        "contrast +15%": ImageEnhance.Contrast(image).enhance(1.15),
        "squashed to 80% height": image.resize((w, int(h * 0.8))),
        "crop of 95%": image.crop((w // 40, h // 40, w - w // 40, h - h // 40)),
        "crop of 90%": image.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
    }


def thumbs(files) -> np.ndarray:
    return np.stack([np.frombuffer(look_file(str(f)).thumb, np.uint8) for f in files])


def correlations(t: np.ndarray) -> np.ndarray:
    z = t.astype(np.float64) - t.mean(axis=1, keepdims=True)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return (z @ z.T)[np.triu_indices(len(z), 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args()
    distinct = make_photo_folder(args.root / "distinct", per_class=45, distinct=True)
    default = make_photo_folder(args.root / "default", per_class=45)
    files = sorted(distinct.rglob("*.jpg"))
    t = thumbs(files)
    textured = t.std(axis=1) >= PLAIN
    print(f"{len(files)} photos, {int((~textured).sum())} near-uniform (spread < {PLAIN:.0f})")
    clean = correlations(t[textured])
    print(f"distinct folder: {len(clean)} pairs, highest correlation {clean.max():.3f}")
    d = thumbs(sorted(default.rglob("*.jpg")))
    near = correlations(d[d.std(axis=1) >= PLAIN])
    print(f"default folder: {int((near >= NEAR).sum())} pairs at {NEAR} or more")
    bits = np.stack([dhash(Image.open(f)) for f in files])[textured]
    distances = (bits[:, None, :] != bits[None, :, :]).sum(-1)[np.triu_indices(len(bits), 1)]
    print(f"dHash, distinct folder: {int((distances <= 3).sum())} pairs within 3 bits")
    print("| copy | found at 0.95 | lowest correlation | dHash bits changed (max) |")
    print("|---|---|---|---|")
    rows: dict[str, list[tuple[float, int]]] = {}
    for k in np.flatnonzero(textured):
        image = Image.open(files[k]).convert("RGB")
        for name, copy in copies(image).items():
            buffer = io.BytesIO()
            copy.save(buffer, "PNG")
            path = args.root / "copy.png"
            path.write_bytes(buffer.getvalue())
            pair = np.stack([t[k], np.frombuffer(look_file(str(path)).thumb, np.uint8)])
            flips = int((dhash(image) != dhash(copy)).sum())
            rows.setdefault(name, []).append((float(correlations(pair)[0]), flips))
    for name, found in rows.items():
        c = np.array([r[0] for r in found])
        flips = max(r[1] for r in found)
        print(f"| {name} | {np.mean(c >= NEAR):.3f} | {c.min():.3f} | {flips} of 64 |")


if __name__ == "__main__":
    main()
