"""Temperature scaling measured: the test split's expected calibration error (ECE, 15 bins),
NLL, Brier score and accuracy before and after, for the README's main job (LeNet-5 on
mnist5k, every option its default) and a MobileNet v2 on real photos (tests/photos.py, 150
a class: 900 crops of the shipped photographs; alpha 0.35 at 64 px, 40 epochs), and that
MobileNet without augmentation (which leaves it over-confident).

    python tests/benchmarks/calibration.py [--root /tmp/calibration] [--seeds 0] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from photos import make_photo_folder

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
        "mobilenet_v2 0.35, photos, --no-augment": {
            "arch": "mobilenet_v2",
            "model_options": {"alpha": 0.35},
            "dataset": f"folder:{photos}",
            "image_size": 64,
            "epochs": 40,
            "augment": (),
        },
    }


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
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("| job | seed | T | test ECE before -> after | NLL | Brier | accuracy | images |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['job']} | {r['seed']} | {r['temperature']:.3f} | {r['ece_before']:.4f} -> "
            f"**{r['ece_after']:.4f}** | {r['nll_before']:.4f} -> {r['nll_after']:.4f} | "
            f"{r['brier_before']:.4f} -> {r['brier_after']:.4f} | {r['accuracy_before']:.4f} "
            f"-> {r['accuracy_after']:.4f} | {r['test_images']} |"
        )


if __name__ == "__main__":
    main()
