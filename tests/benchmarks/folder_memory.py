"""Peak memory of ``cnnkeras train`` against the size of an image folder.

Folders of synthetic 64x64 grey JPEGs (3 classes) are trained for one epoch with LeNet-5 at
224x224 (as in the issue that asked for it); peak resident memory of the whole process is
read with /usr/bin/time -f %M.

    python tests/benchmarks/folder_memory.py --sizes 5000 20000 --root /tmp/folders
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def make_folder(root: Path, n: int) -> Path:
    folder = root / f"synthetic{n}"
    if folder.is_dir():
        return folder
    rng = np.random.default_rng(n)
    for i in range(n):
        (folder / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (64, 64), dtype=np.uint8)
        Image.fromarray(pixels, "L").save(folder / f"c{i % 3}" / f"{i}.jpg")
    return folder


def peak_mib(folder: Path, out: Path, extra: list[str]) -> float:
    cmd = [
        "/usr/bin/time",
        "-f",
        "%M",
        sys.executable,
        "-m",
        "cnnkeras",
        "train",
        "--dataset",
        f"folder:{folder}",
        "--image-size",
        "224",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--root", type=Path, default=Path("/tmp/cnnkeras-folders"))
    parser.add_argument("--extra", nargs="*", default=[], help="more train options")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        folder = make_folder(args.root, n)
        rows.append((n, peak_mib(folder, args.root / "runs", args.extra)))
    print("| images | peak RSS MiB | vs smallest |\n|---|---|---|")
    for n, mib in rows:
        print(f"| {n:,} | {mib:,.0f} | {mib / rows[0][1]:.2f} |")


if __name__ == "__main__":
    main()
