"""Latency of an export's files in the browser app (LiteRT.js in headless Chromium, the model
call alone, median of RUNS) beside `cnnkeras bench infer` (LiteRT's Python interpreter,
XNNPACK) on the same files, in interleaved rounds; optionally a screenshot of the page with
photos chosen and the self-test run.

    python tests/benchmarks/browser_latency.py EXPORT_DIR [--rounds 3] [--runs 200]
        [--screenshot PNG --photos A.jpg B.jpg ...]
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from helpers import browse, serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--screenshot")
    parser.add_argument("--photos", nargs="*", default=[])
    parser.add_argument("--variant", help="shown in the screenshot (default: the last)")
    args = parser.parse_args()
    folder = Path(args.export)
    record = json.loads((folder / "preprocess.json").read_text())
    variants = [v for v in record["variants"] if (folder / f"model_{v}.tflite").is_file()]
    page_ms = {v: [] for v in variants}
    python_ms = {v: [] for v in variants}
    with serving(str(folder)) as (url, _):
        for _ in range(args.rounds):
            page = browse(url, variants=variants, bench=args.runs)
            for v in variants:
                page_ms[v].append(page["variants"][v]["bench"]["median_ms"])
                assert page["variants"][v]["pass"], v
            for v in variants:
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "cnnkeras",
                        "bench",
                        "infer",
                        "--json",
                        str(folder / f"model_{v}.tflite"),
                        "--runs",
                        str(args.runs),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                python_ms[v].append(json.loads(proc.stdout.splitlines()[-1])["median_ms"])
        if args.screenshot:
            shown = args.variant or variants[-1]
            order = [v for v in variants if v != shown] + [shown]
            browse(url, variants=order, photos=args.photos, screenshot=args.screenshot)
    print(f"{'variant':<10}{'KiB':>7}{'page ms':>10}{'python ms':>11}   (medians of {args.rounds})")
    for v in variants:
        size = (folder / f"model_{v}.tflite").stat().st_size / 1024
        print(
            f"{v:<10}{size:>7.0f}{statistics.median(page_ms[v]):>10.3f}"
            f"{statistics.median(python_ms[v]):>11.3f}   page rounds {page_ms[v]}"
        )


if __name__ == "__main__":
    main()
