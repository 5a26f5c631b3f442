"""Images of none of the classes: mnist5k's digits 0-4 as the known classes (an image folder),
5-9 as the unknown set; LeNet-5 (every option its default) and a small VGG (VGG-16 with 16
filters, 128 dense units and batch norm, 32x32) trained with ``--target-accuracy 0.99``,
then ``cnnkeras evaluate --unknown``: the AUROC of known (test split) against unknown (every
image of 5-9) by top score, and the share of unknown images accepted at the threshold for
0.99 validation accuracy and at the score that keeps 95% of the known.

    python tests/benchmarks/open_set.py [--root /tmp/open-set] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from cnnkeras.data import load_dataset
from cnnkeras.evaluate import evaluate_model
from cnnkeras.train import TrainConfig, train

MODELS = {
    "lenet5": {},
    "small vgg16 (16 filters, 128 dense, batch norm, 32x32)": {
        "arch": "vgg16",
        "model_options": {"filters": 16, "dense_units": 128, "batch_norm": True},
        "image_size": 32,
    },
}


def folders(root: Path) -> tuple[Path, Path]:
    """mnist5k as PNG files: digits 0-4 under known/, 5-9 under unknown/."""
    if not (root / "known").is_dir():
        data = load_dataset("mnist5k", verbose=0)
        for split in data.splits.values():
            for n, (image, label) in enumerate(zip(split.images, split.labels, strict=True)):
                folder = root / ("known" if label < 5 else "unknown") / str(label)
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image[..., 0]).save(
                    folder / f"{len(list(folder.iterdir()))}-{n}.png"
                )
    return root / "known", root / "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/tmp/open-set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    root = Path(args.root)
    known, unknown = folders(root)
    rows = []
    for name, options in MODELS.items():
        for seed in args.seeds:
            run = root / "runs" / f"{len(rows)}"
            config = TrainConfig(
                dataset=f"folder:{known}", target_accuracy=0.99, seed=seed, **options
            )
            result = train(config, run_dir=run, verbose=0)
            m = evaluate_model(run / "model.keras", unknown=f"folder:{unknown}")["unknown"]
            found = json.loads((run / "config.json").read_text())["score_threshold"]
            row = {"model": name, "seed": seed, "test_accuracy": result["test_accuracy"]}
            row.update(m, val_coverage=found["coverage"])
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "| model | seed | test accuracy (0-4) | AUROC | threshold (0.99 on val) | val kept | "
        "test kept | unknown accepted | unknown accepted at 95% known kept |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['seed']} | {r['test_accuracy']:.4f} | **{r['auroc']:.4f}** | "
            f"{r['threshold']:.4f} | {r['val_coverage']:.1%} | {r['known_kept_at_threshold']:.1%} "
            f"| **{r['accepted_at_threshold']:.1%}** | {r['accepted_keeping_known']:.1%} |"
        )


if __name__ == "__main__":
    main()
