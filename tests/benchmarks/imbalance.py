"""Class weights on an imbalanced split: mnist5k as an image folder with digits 0-4 cut to
10% of their images, LeNet-5 trained with the defaults, without and with
``--class-weight balanced``; the macro recall of the small classes on the test split.

    python tests/benchmarks/imbalance.py [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from cnnkeras.data import load_dataset
from cnnkeras.train import TrainConfig, train

SMALL = tuple(range(5))  # the classes cut to 10%


def imbalanced_folder(root: Path, keep: float = 0.1, seed: int = 0) -> Path:
    """mnist5k's images as PNG files, one folder a digit, digits 0-4 cut to ``keep``."""
    rng = np.random.default_rng(seed)
    data = load_dataset("mnist5k", verbose=0)
    for split in data.splits.values():
        for image, label in zip(split.images, split.labels, strict=True):
            if label in SMALL and rng.random() > keep:
                continue
            folder = root / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[..., 0]).save(folder / f"{len(list(folder.iterdir()))}.png")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = imbalanced_folder(Path(tmp) / "digits")
        counts = {d.name: len(list(d.iterdir())) for d in sorted(root.iterdir())}
        print("images per class:", counts)
        for weight in ("none", "balanced"):
            config = TrainConfig(dataset=f"folder:{root}", class_weight=weight, seed=args.seed)
            result = train(config, run_dir=Path(tmp) / weight, verbose=0)
            m = json.loads((Path(tmp) / weight / "metrics.json").read_text())
            recall = m["recall"]["per_class"]
            small = np.mean([recall[str(c)] for c in SMALL])
            print(
                f"--class-weight {weight:<8}  small-class macro recall {small:.4f}  "
                f"macro recall {m['recall']['macro']:.4f}  accuracy {m['accuracy']:.4f}  "
                f"balanced accuracy {m['balanced_accuracy']:.4f}  ({result['fit_seconds']:.0f} s)"
            )


if __name__ == "__main__":
    main()
