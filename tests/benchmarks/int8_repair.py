"""int8 repair on a model whose int8 misses its bar: EfficientNet-B0 trained on mnist5k at
32x32 for 5 epochs (as the README's comparison trains it), exported to int8 with and without
the repair; sizes, accuracies, single-image latencies and the layers kept in float.

    python tests/benchmarks/int8_repair.py [--epochs 5] [--out DIR]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--arch", default="efficientnet_b0")
    parser.add_argument("--out")
    args = parser.parse_args()
    from cnnkeras._spawn import import_tensorflow_quietly

    import_tensorflow_quietly()
    from cnnkeras.export import export_model
    from cnnkeras.train import TrainConfig, train

    out = Path(args.out or tempfile.mkdtemp())
    run = out / "run"
    if not (run / "model.keras").is_file():
        config = TrainConfig(arch=args.arch, dataset="mnist5k", image_size=32, epochs=args.epochs)
        train(config, run_dir=run, verbose=0)
    started = time.perf_counter()
    report = export_model(run / "model.keras", variants="int8", out=out / "tflite", verbose=0)
    seconds = time.perf_counter() - started
    rows = {
        v: {k: r.get(k) for k in ("accuracy", "bytes", "median_ms", "phone_accuracy")}
        for v, r in report["variants"].items()
    }
    repair = report.get("int8_repair", {})
    print(
        json.dumps(
            {
                "arch": args.arch,
                "keras_accuracy": report["keras_accuracy"],
                "variants": rows,
                "kept_float": repair.get("kept_float"),
                "layers_kept": len(repair.get("kept_float") or []),
                "layers": repair.get("layers"),
                "trials": repair.get("trials"),
                "export_seconds": round(seconds, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
