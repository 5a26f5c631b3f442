"""The training recipe, piece by piece, on mnist5k: a small VGG-16 with batch norm (16 to 128
filters, 128 dense units, 32x32), each line adding one piece to the line above, one seed
each; then the final recipe over three seeds. Every run's wall time is measured (the bar:
under 10 minutes on a 2-core CPU). Results are appended to a JSON-lines file, and a line
already there is not run again (a killed benchmark continues).

    python tests/benchmarks/recipe_ablation.py ablation   [--out FILE]
    python tests/benchmarks/recipe_ablation.py final      [--out FILE] [--seeds 42,43,44]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

BASE = dict(
    arch="vgg16",
    dataset="mnist5k",
    image_size=32,
    epochs=30,
    model_options={"filters": 16, "dense_units": 128, "batch_norm": True},
)
# each piece adds to the ones before it
PIECES = [
    ("train's defaults, 30 epochs", {}),
    ("+ --lr auto (lr-find's suggestion)", {"lr": "auto"}),
    ("+ --label-smoothing 0.1", {"label_smoothing": 0.1}),
    ("+ --mixup 0.2", {"mixup": 0.2}),
    ("+ --weight-decay 0.05", {"weight_decay": 0.05}),
    ("+ --ema 0.999", {"ema": 0.999}),
]
# the final recipe: train's epochs ('auto', 60 here; early stopping may end a run sooner)
FINAL = {"epochs": "auto", "lr": "auto", "label_smoothing": 0.1, "ema": 0.999}


def run(name: str, options: dict, seed: int, out: Path) -> dict:
    from cnnkeras.evaluate import evaluate_model
    from cnnkeras.train import TrainConfig, train

    config = TrainConfig(**{**BASE, **options, "seed": seed, "out": str(out)})
    started = time.perf_counter()
    result = train(config, verbose=0)
    seconds = time.perf_counter() - started
    tta = evaluate_model(Path(result["run_dir"]) / "model.keras", tta=True)["tta"]
    record = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    return {
        "name": name,
        "seed": seed,
        "options": options,
        "lr": record["lr"],
        "test_accuracy": result["test_accuracy"],
        "tta_accuracy": tta["accuracy"],
        "epochs_run": result["epochs_run"],
        "wall_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("ablation", "final"))
    parser.add_argument("--out", default="/tmp/recipe_ablation.jsonl")
    parser.add_argument("--seeds", default="42,43,44")
    args = parser.parse_args()
    path = Path(args.out)
    done = (
        {(r["name"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())}
        if path.is_file()
        else set()
    )
    runs_dir = Path(tempfile.mkdtemp(prefix="recipe-"))
    if args.what == "ablation":
        todo, options = [], {}
        for name, piece in PIECES:
            options = {**options, **piece}
            todo.append((name, dict(options), 42))
    else:
        todo = [("final recipe", FINAL, int(s)) for s in args.seeds.split(",")]
    for name, options, seed in todo:
        if (name, seed) in done:
            continue
        row = run(name, options, seed, runs_dir)
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
