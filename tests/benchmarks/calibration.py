"""Temperature scaling measured: the test split's expected calibration error (ECE, 15 bins),
NLL, Brier score and accuracy before and after, for the README's main job (LeNet-5 on
mnist5k, every option its default) and a MobileNet v2 on real photos (tests/photos.py, 150
a class: 900 crops of the shipped photographs; alpha 0.35 at 64 px, 40 epochs), and that
MobileNet without augmentation, and an under-trained LeNet-5 (digits, 5 epochs). Beside each:
the ECE a perfectly calibrated model with the same test scores shows on that many images.

    python tests/benchmarks/calibration.py [--root /tmp/calibration] [--seeds 0] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from photos import make_photo_folder

from cnnkeras.data import load_dataset
from cnnkeras.evaluate._calibration import calibration
from cnnkeras.saved import Predictor, predict_split, run_split_record
from cnnkeras.train import TrainConfig, train


def jobs(root: Path) -> dict[str, dict]:
    photos = root / "photos"
    if not photos.is_dir():
        make_photo_folder(photos, per_class=150)
    return {
        "main job (lenet5, mnist5k)": {},
        "mobilenet_v2 0.35, photos": {
            "arch": "mobilenet_v2",
            "model_options": {"alpha": 0.35},
            "dataset": f"folder:{photos}",
            "image_size": 64,
            "epochs": 40,
        },
        "lenet5, digits 16x16, 5 epochs (under-trained)": {
            "dataset": "digits",
            "image_size": 16,
            "epochs": 5,
        },
        "mobilenet_v2 0.35, photos, --no-augment": {
            "arch": "mobilenet_v2",
            "model_options": {"alpha": 0.35},
            "dataset": f"folder:{photos}",
            "image_size": 64,
            "epochs": 40,
            "augment": (),
        },
    }


def null_ece(run: Path, draws: int = 2000) -> tuple[float, float]:
    """The median and 90th percentile of the ECE that a perfectly calibrated model with these
    very test scores would show: labels drawn from the scores themselves, ``draws`` times.
    An ECE inside it is calibrated as far as this many test images can tell."""
    model = run / "model.keras"
    predictor = Predictor(model)
    data = load_dataset(predictor.dataset, seed=predictor.seed, record=run_split_record(model))
    scores, _ = predict_split(predictor, data.splits["test"], predictor.prep)
    rng = np.random.default_rng(0)
    eces = []
    for _ in range(draws):
        labels = (rng.random((len(scores), 1)) > scores.cumsum(axis=1)).sum(axis=1)
        eces.append(calibration(labels.clip(0, scores.shape[1] - 1), scores)["ece"])
    return float(np.median(eces)), float(np.quantile(eces, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/tmp/calibration")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", default="", help="the jobs whose name holds this text")
    args = parser.parse_args()
    root = Path(args.root)
    rows = []
    for name, options in jobs(root).items():
        if args.only not in name:
            continue
        for seed in args.seeds:
            folder = root / "runs" / f"{name.replace(' ', '_').replace(',', '')}-{seed}"
            config = TrainConfig(**options, seed=seed)
            result = train(config, run_dir=folder, verbose=0)
            record = json.loads((folder / "config.json").read_text())
            after = json.loads((folder / "metrics.json").read_text())["calibration"]
            c = record["calibration"]
            row = {
                "job": name,
                "seed": seed,
                "temperature": c["temperature"],
                "ece_before": c["before"]["ece"],
                "ece_after": after["ece"],
                "nll_before": c["before"]["nll"],
                "nll_after": after["nll"],
                "brier_before": c["before"]["brier"],
                "brier_after": after["brier"],
                "accuracy_before": c["before"]["accuracy"],
                "accuracy_after": result["test_accuracy"],
                "test_images": sum(b["count"] for b in after["bins"]),
            }
            row["null_median"], row["null_p90"] = null_ece(folder)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "| job | seed | T | test ECE before -> after | calibrated model's ECE on this many "
        "images (median, 90%) | NLL | Brier | accuracy | images |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['job']} | {r['seed']} | {r['temperature']:.3f} | {r['ece_before']:.4f} -> "
            f"**{r['ece_after']:.4f}** | {r['null_median']:.4f}, {r['null_p90']:.4f} | "
            f"{r['nll_before']:.4f} -> {r['nll_after']:.4f} | "
            f"{r['brier_before']:.4f} -> {r['brier_after']:.4f} | {r['accuracy_before']:.4f} "
            f"-> {r['accuracy_after']:.4f} | {r['test_images']} |"
        )


if __name__ == "__main__":
    main()
