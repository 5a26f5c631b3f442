"""Mixed precision measured: `cnnkeras.bench.bench_train` images/s of every family in
float32, in bfloat16 as `train --precision bfloat16` builds it (classifier and depthwise
convolutions in float32) and, for models with depthwise convolutions, in bfloat16 throughout
(classifier aside); each in its own process, interleaved round by round, median of the rounds.
Then what `--precision auto`'s probe chooses for each (with its own timings), so that a
choice can be checked against the bench.

    python tests/benchmarks/precision.py [--rounds 3] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

# (label, arch, image size, steps, repeats): each family at 64x64 (96 for MobileNets), batch 64
JOBS = [
    ("lenet5 @32", "lenet5", 32, 32, 5),
    ("alexnet @67", "alexnet", 67, 4, 5),
    ("vgg16 @64", "vgg16", 64, 2, 3),
    ("googlenet @64", "googlenet", 64, 4, 5),
    ("resnet18 @64", "resnet18", 64, 8, 5),
    ("mobilenet_v1 @96", "mobilenet_v1", 96, 4, 5),
    ("mobilenet_v2 @96", "mobilenet_v2", 96, 4, 5),
    ("efficientnet_b0 @64", "efficientnet_b0", 64, 4, 5),
]
DEPTHWISE = ("mobilenet_v1", "mobilenet_v2", "efficientnet_b0")
# (column, precision, layer types kept in float32; None: train's default)
VARIANTS = [
    ("float32", "float32", None),
    ("bfloat16", "bfloat16", None),
    ("bfloat16, depthwise too", "bfloat16", []),
]

BENCH = """
import json, sys
from cnnkeras.bench import bench_train
arch, size, steps, repeats, precision, kept = json.loads(sys.argv[1])
r = bench_train(arch, image_size=size, steps=steps, repeats=repeats, precision=precision,
                float32_layers=kept)
print(json.dumps(r["images_per_sec"]))
"""

PROBE = """
import json, sys
from cnnkeras.models import create_model, model_info
from cnnkeras.train import TrainConfig, _precision
from cnnkeras.train import compile_for_training
arch, size = sys.argv[1], int(sys.argv[2])
info = model_info(arch)
shape = (size, size, info.input_shape[-1])
make = lambda: create_model(arch, input_shape=shape, num_classes=10)
config = TrainConfig(arch=arch, batch_size=64)
flags = _precision.cpu_flags() | {"amx_bf16"}  # probe even where the CPU has no bf16 units
choice = _precision.choose("auto", make, 64, lambda m: compile_for_training(m, config),
                           flags=flags)
print(json.dumps(choice))
"""


def _last_json(cmd: list[str]):
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    print("| model | " + " | ".join(f"{v[0]} img/s" for v in VARIANTS) + " | auto's probe |")
    print("|---" * (len(VARIANTS) + 2) + "|")
    for label, arch, size, steps, repeats in JOBS:
        if args.only not in label:
            continue
        variants = [v for v in VARIANTS if v[2] is None or arch in DEPTHWISE]
        runs: dict[str, list[float]] = {v[0]: [] for v in variants}
        for _ in range(args.rounds):
            for column, precision, kept in variants:
                job = json.dumps([arch, size, steps, repeats, precision, kept])
                runs[column].append(_last_json([sys.executable, "-c", BENCH, job]))
        medians = [statistics.median(runs[v[0]]) if v in variants else None for v in VARIANTS]
        cells = [f"{m:,.0f} ({m / medians[0]:.2f}x)" if m else "" for m in medians]
        why = _last_json([sys.executable, "-c", PROBE, arch, str(size)])[2]
        print(f"| {label} | {' | '.join(cells)} | {why} |", flush=True)
        print(f"  rounds: {json.dumps(runs)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
