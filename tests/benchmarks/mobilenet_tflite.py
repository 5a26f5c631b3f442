"""File size and single-image latency of MobileNet v1/v2 (224x224x3, 1000 classes) as
float32, float16, dynamic-range and int8 TFLite files in the LiteRT interpreter (XNNPACK),
next to the Keras model's own single-image latency. Weights are random and int8 is
calibrated on random images: neither size nor latency depends on the weight values.

    python tests/benchmarks/mobilenet_tflite.py --runs 200
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from cnnkeras.export import VARIANTS, bench_infer, convert
from cnnkeras.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield [rng.uniform(0, 1, (1, 224, 224, 3)).astype("float32")]

    print("| model | file | size | median ms | p90 ms | images/s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("mobilenet_v1", "mobilenet_v2"):
            model = create_model(name)
            keras_path = Path(tmp) / f"{name}.keras"
            model.save(keras_path)
            sizes = {}
            for variant in VARIANTS:
                path = Path(tmp) / f"{name}_{variant}.tflite"
                path.write_bytes(convert(model, variant, representative))
                sizes[variant] = path.stat().st_size
                r = bench_infer(path, threads=args.threads, runs=args.runs)
                print(
                    f"| {name} | {variant} .tflite | {r['file_bytes'] / 2**20:.2f} MiB | "
                    f"{r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['images_per_sec']:.0f} |"
                )
            r = bench_infer(keras_path, threads=args.threads, runs=args.runs)
            print(
                f"| {name} | Keras (tf.function) | {r['file_bytes'] / 2**20:.2f} MiB | "
                f"{r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['images_per_sec']:.0f} |"
            )
            print(
                f"| {name} | int8 / float32 size | {sizes['int8'] / sizes['float32']:.3f} | | | |"
            )


if __name__ == "__main__":
    main()
