"""PyTorch eager training loop of the same LeNet-5 as ``cnnkeras bench train --arch lenet5``:
the baseline of BENCHMARKS.md. Not part of the package; torch is no dependency of cnnkeras.

    pip install torch==2.13.0
    python tests/benchmarks/torch_lenet5.py --batch-size 64 --steps 64 --repeats 7 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn


def lenet5(num_classes: int = 10) -> nn.Module:
    # the cnnkeras lenet5 defaults: tanh, average-pool subsampling, dense C5/F6: 61,706 params
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.Tanh(),
        nn.Linear(120, 84),
        nn.Tanh(),
        nn.Linear(84, num_classes),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = lenet5()
    assert sum(p.numel() for p in model.parameters()) == 61_706
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(args.batch_size, 1, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    times = []
    for repeat in range(args.repeats + 1):
        start = time.perf_counter()
        for _ in range(args.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        if repeat:  # the first round warms up
            times.append(time.perf_counter() - start)
    result = {
        "framework": f"torch {torch.__version__} eager",
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "images_per_sec": args.batch_size * args.steps / statistics.median(times),
        "images_per_sec_runs": [args.batch_size * args.steps / t for t in times],
    }
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
