"""Does `cnnkeras lr-find` suggest a good learning rate? For LeNet-5 and MobileNet v2 on
mnist5k: the range test's suggestion (valley rule, and the other two rules) against a grid
of full runs, 5 epochs each at a constant rate, same seed; the best of the grid is the one
with the highest validation accuracy after the 5th epoch.

    python tests/benchmarks/lr_find_grid.py [--archs lenet5,mobilenet_v2]
    python tests/benchmarks/lr_find_grid.py --suggest-only   # the range tests, no grid
"""

import argparse
import csv
import json
import tempfile
from pathlib import Path

GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
SIZES = {"lenet5": None, "mobilenet_v2": 32}


def main() -> None:
    from cnnkeras.train import TrainConfig, lr_find, train

    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default="lenet5,mobilenet_v2")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--suggest-only", action="store_true")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="lr_grid-"))
    rows = []
    for arch in args.archs.split(","):
        base = dict(arch=arch, dataset="mnist5k", image_size=SIZES.get(arch), seed=42)
        found = lr_find(TrainConfig(**base), plot=out / f"{arch}.png", verbose=0)
        print(arch, found.text(), flush=True)
        if args.suggest_only:
            continue
        grid = {}
        for lr in GRID:
            config = TrainConfig(
                **base, lr=lr, epochs=args.epochs, schedule="constant", out=str(out / arch)
            )
            result = train(config, verbose=0)
            with open(Path(result["run_dir"]) / "history.csv") as f:
                last = list(csv.DictReader(f))[-1]
            grid[lr] = float(last["val_accuracy"])
            print(f"{arch} lr {lr:g}: val_accuracy after {args.epochs} epochs {grid[lr]:.4f}")
        best = max(grid, key=grid.get)
        ratio = max(found.suggestion / best, best / found.suggestion)
        row = {
            "arch": arch,
            "suggestion": found.suggestion,
            **{f"rule {k}": v for k, v in found.others.items()},
            "grid": grid,
            "best": best,
            "factor": ratio,
            "within_3x": ratio <= 3,
        }
        rows.append(row)
        print(json.dumps(row))
    print("\n| model | " + " | ".join(f"{lr:g}" for lr in GRID) + " | best | lr-find | factor |")
    print("|---|" + "---|" * (len(GRID) + 3))
    for r in rows:
        cells = " | ".join(f"{r['grid'][lr]:.4f}" for lr in GRID)
        print(
            f"| {r['arch']} | {cells} | {r['best']:g} | {r['suggestion']:.2g} | {r['factor']:.2f} |"
        )
    print(f"plots in {out}")


if __name__ == "__main__":
    main()
