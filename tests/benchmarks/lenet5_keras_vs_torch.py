"""Interleaved runs of ``cnnkeras bench train --arch lenet5`` and the PyTorch eager baseline
(tests/benchmarks/torch_lenet5.py), so both see the same machine load. Prints a Markdown table.

    pip install torch==2.13.0
    python tests/benchmarks/lenet5_keras_vs_torch.py --rounds 3
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def run(cmd: list[str]) -> float:
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_sec"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    common = ["--batch-size", str(args.batch_size), "--json"]
    keras_cmd = [sys.executable, "-m", "cnnkeras", "bench", "train", "--arch", "lenet5", *common]
    torch_cmd = [sys.executable, str(HERE / "torch_lenet5.py"), *common]
    keras_ips, torch_ips = [], []
    for _ in range(args.rounds):
        keras_ips.append(run(keras_cmd))
        torch_ips.append(run(torch_cmd))
    k, t = statistics.median(keras_ips), statistics.median(torch_ips)
    print("| path | images/s (median of rounds) | rounds |")
    print("|---|---|---|")
    for name, median, runs in (
        ("cnnkeras `model.fit` default path", k, keras_ips),
        ("PyTorch 2.13 eager loop", t, torch_ips),
    ):
        print(f"| {name} | {median:,.0f} | {', '.join(f'{v:,.0f}' for v in runs)} |")
    print(f"\nratio cnnkeras / PyTorch: {k / t:.2f}")


if __name__ == "__main__":
    main()
