"""Memory and wall time of one Keras Tuner search (LeNet-5 on digits, 16x16, 1 epoch a trial)
run three ways: every trial in one process, the default hand-over of a search process once it
has grown by 128 MiB, and a fresh process for every trial. The trials give the same scores
whichever way they run; the table shows what each way costs.

    python tests/benchmarks/tuner_memory.py --trials 20 --rounds 3
"""

import argparse
import csv
import math
import statistics
import tempfile
import time
from pathlib import Path

from cnnkeras.tuning import Experiment, run_search
from cnnkeras.tuning._experiment import MEMORY_GROWTH_MB

# every search in a child process of its own, so that no search inherits another's growth
MODES = {
    "one process": math.inf,
    f"hand over at +{MEMORY_GROWTH_MB:.0f} MiB": MEMORY_GROWTH_MB,
    "fresh process per trial": 0.0,
}


def one_search(growth, trials: int, folder: Path) -> tuple[float, list[float], list[str]]:
    e = Experiment(
        arch="lenet5",
        dataset="digits",
        image_size=16,
        epochs=1,
        max_trials=trials,
        directory=str(folder),
    )
    started = time.perf_counter()
    run_search(e, max_memory_growth_mb=growth, verbose=0)
    seconds = time.perf_counter() - started
    with open(folder / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    return seconds, [float(r["rss_mb"]) for r in rows], [r["val_accuracy"] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {m: [] for m in MODES}
    memory, scores = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # interleaved: noise hits every mode alike
            for mode, growth in MODES.items():
                seconds, rss, scores[mode] = one_search(
                    growth, args.trials, Path(tmp) / f"{r}_{growth}"
                )
                times[mode].append(seconds)
                memory[mode] = rss
    base = statistics.median(times["one process"])
    print("| mode | wall s (median) | vs one process | rss first trial | rss max | rss last |")
    print("|---|---|---|---|---|---|")
    for mode in MODES:
        t, rss = statistics.median(times[mode]), memory[mode]
        print(
            f"| {mode} | {t:.1f} | {t / base:.2f} | {rss[0]:.0f} MiB | {max(rss):.0f} MiB | "
            f"{rss[-1]:.0f} MiB |"
        )
    print("\nrss after each trial (MiB), last round:")
    for mode in MODES:
        print(f"- {mode}: " + " ".join(f"{v:.0f}" for v in memory[mode]))
    print("\nsame scores in every mode:", len({tuple(s) for s in scores.values()}) == 1)


if __name__ == "__main__":
    main()
