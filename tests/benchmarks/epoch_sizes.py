"""Training throughput against the epoch's size and the steps per execution.

For epochs of 4, 40 and 63 steps (batch 64) with a validation split of a ninth of the
training images, every candidate number of steps per execution is timed as ``cnnkeras
train`` runs an epoch (``bench_train``: median of timed epochs, validation and precise batch
norm included); the choice ``cnnkeras train`` makes is compared with the fastest. Then
``bench train --steps 4`` against ``--steps 64`` per image. Rounds are interleaved; the
median of rounds is reported.

    python tests/benchmarks/epoch_sizes.py --rounds 3 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, sys
from cnnkeras.bench import bench_train
steps, val, spe, repeats = map(int, sys.argv[1:5])
r = bench_train("mobilenet_v2", image_size=64, batch_size=64, num_classes=6, steps=steps,
                val_images=val, repeats=repeats, steps_per_execution=spe or None)
print(json.dumps({"ips": r["images_per_sec"], "spe": r["steps_per_execution"]}))
"""


def measure(steps: int, val: int, spe: int, repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), str(val), str(spe), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from cnnkeras.train._plan import execution_plan

    cases = {4: {1, 4, 32}, 40: {1, 8, 20, 32}, 63: {1, 21, 32}}
    for steps, candidates in cases.items():  # and the choice cnnkeras train makes
        candidates.add(execution_plan(steps, steps * 64 // 9)[0])
    cases = {steps: sorted(candidates) for steps, candidates in cases.items()}
    results: dict = {}
    for _ in range(args.rounds):
        for steps, candidates in cases.items():
            val = steps * 64 // 9
            for spe in candidates:
                r = measure(steps, val, spe, args.repeats)
                results.setdefault((steps, spe), []).append(r["ips"])
        for steps in (4, 64):
            results.setdefault(("default", steps), []).append(
                measure(steps, 0, 0, args.repeats)["ips"]
            )
    print(
        "| epoch steps | validation images | steps per execution | images/s (median) | vs fastest |"
    )
    print("|---|---|---|---|---|")
    for steps, candidates in cases.items():
        val = steps * 64 // 9
        chosen = execution_plan(steps, val)[0]
        medians = {spe: statistics.median(results[(steps, spe)]) for spe in candidates}
        best = max(medians.values())
        for spe, ips in medians.items():
            mark = " (cnnkeras)" if spe == chosen else ""
            print(f"| {steps} | {val} | {spe}{mark} | {ips:,.0f} | {ips / best:.2f} |")
    small = statistics.median(results[("default", 4)])
    large = statistics.median(results[("default", 64)])
    print(
        f"\nbench train --steps 4: {small:,.0f} images/s; --steps 64: {large:,.0f} images/s; "
        f"ratio {small / large:.2f}"
    )


if __name__ == "__main__":
    main()
