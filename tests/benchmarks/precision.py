"""Mixed precision measured: `cnnkeras bench train` images/s of every family in float32 and
in bfloat16 (the classifier and depthwise convolutions kept in float32), interleaved round by
round, median of the rounds; and what `--precision auto`'s probe chooses for each (its own
two timings), so that a choice can be checked against the bench.

    python tests/benchmarks/precision.py [--rounds 3] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CLI = [sys.executable, "-m", "cnnkeras"]

# (label, bench train arguments): each family at 64x64 (96 for MobileNets), batch 64
JOBS = [
    ("lenet5 @32", ["--arch", "lenet5", "--steps", "32"]),
    ("alexnet @67", ["--arch", "alexnet", "--image-size", "67", "--steps", "4"]),
    ("vgg16 @64", ["--arch", "vgg16", "--image-size", "64", "--steps", "2", "--repeats", "3"]),
    ("googlenet @64", ["--arch", "googlenet", "--image-size", "64", "--steps", "4"]),
    ("resnet18 @64", ["--arch", "resnet18", "--image-size", "64", "--steps", "8"]),
    ("mobilenet_v1 @96", ["--arch", "mobilenet_v1", "--image-size", "96", "--steps", "4"]),
    ("mobilenet_v2 @96", ["--arch", "mobilenet_v2", "--image-size", "96", "--steps", "4"]),
    ("efficientnet_b0 @64", ["--arch", "efficientnet_b0", "--image-size", "64", "--steps", "4"]),
]

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
print(json.dumps(_precision.choose("auto", make, 64, lambda m: compile_for_training(m, config))))
"""


def bench(args: list[str], precision: str) -> float:
    cmd = [*CLI, "bench", "train", *args, "--precision", precision, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.splitlines()[-1])["images_per_sec"]


def probe(args: list[str]) -> tuple[str, str]:
    arch = args[args.index("--arch") + 1]
    size = args[args.index("--image-size") + 1] if "--image-size" in args else "32"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, arch, size], capture_output=True, text=True, check=True
    )
    return tuple(json.loads(proc.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    print("| model | float32 img/s | bfloat16 img/s | bf16 / fp32 | auto chooses (probe) |")
    print("|---|---|---|---|---|")
    for label, job in JOBS:
        if args.only not in label:
            continue
        runs = {"float32": [], "bfloat16": []}
        for _ in range(args.rounds):
            for precision in runs:
                runs[precision].append(bench(job, precision))
        f32, bf16 = (statistics.median(runs[p]) for p in runs)
        chosen, why = probe(job)
        print(
            f"| {label} | {f32:,.0f} | {bf16:,.0f} | {bf16 / f32:.2f}x | {chosen}: "
            f"{why.split(': ', 1)[1]} |",
            flush=True,
        )
        print(f"  rounds: {json.dumps(runs)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
