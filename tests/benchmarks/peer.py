"""cnnkeras against its PyTorch peer, training throughput on the same networks: each round
runs `cnnkeras bench train` (float32 and bfloat16) and tests/benchmarks/torch_zoo.py (eager
float32, float32 channels_last, autocast bfloat16 channels_last), each in its own process,
one after the other, so that all see the same machine load; the table gives the median of
the rounds in images/s.

    pip install torch==2.13.0
    python tests/benchmarks/peer.py [--rounds 3] [--only resnet18] [--torch-python PATH]

``--torch-python``: the interpreter that has torch (default: this one). ``--float32-only``
leaves out the bfloat16 columns (on a CPU without bfloat16 units both frameworks emulate it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

# (arch, image size, steps per timed round): 64x64 (96 for MobileNet v2), batch 64
JOBS = [("resnet18", 64, 8), ("vgg16", 64, 2), ("mobilenet_v2", 96, 4), ("efficientnet_b0", 64, 4)]
# (column, precision, arguments)
KERAS = [
    ("cnnkeras float32", "float32", ["--precision", "float32"]),
    ("cnnkeras bfloat16", "bfloat16", ["--precision", "bfloat16"]),
]
TORCH = [
    ("PyTorch float32", "float32", []),
    ("PyTorch float32 channels_last", "float32", ["--channels-last"]),
    ("PyTorch bf16 autocast channels_last", "bfloat16", ["--channels-last", "--bf16"]),
]


def _images_per_sec(cmd: list[str]) -> float:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.splitlines()[-1])["images_per_sec"]


def commands(arch: str, size: int, steps: int, repeats: int, torch_python: str, bf16: bool):
    """(column, command) of each configuration measured for one network."""
    common = ["--arch", arch, "--image-size", str(size), "--steps", str(steps)]
    common += ["--repeats", str(repeats), "--json"]
    keras = [sys.executable, "-m", "cnnkeras", "bench", "train", *common]
    torch = [torch_python, str(HERE / "torch_zoo.py"), *common]
    return [
        (column, [*program, *flags])
        for program, columns in ((keras, KERAS), (torch, TORCH))
        for column, precision, flags in columns
        if bf16 or precision == "float32"
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="")
    parser.add_argument("--torch-python", default=sys.executable)
    parser.add_argument("--float32-only", action="store_true")
    args = parser.parse_args()
    header = None
    for arch, size, steps in JOBS:
        if args.only not in arch:
            continue
        jobs = commands(arch, size, steps, args.repeats, args.torch_python, not args.float32_only)
        if header is None:
            header = [column for column, _ in jobs]
            print(f"| network | {' | '.join(header)} |\n|---{'|---' * len(header)}|")
        runs: dict[str, list[float]] = {column: [] for column, _ in jobs}
        for _ in range(args.rounds):
            for column, cmd in jobs:
                runs[column].append(_images_per_sec(cmd))
        cells = [f"{statistics.median(runs[c]):,.0f}" for c in header]
        print(f"| {arch} @{size} | {' | '.join(cells)} |", flush=True)
        print(f"  rounds: {json.dumps(runs)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
