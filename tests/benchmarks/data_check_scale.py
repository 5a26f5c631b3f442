"""How long `cnnkeras data check` takes and how much memory it holds, against the number of
files: folders of N real-photo JPEGs (tests/photos.py crops, 30-125 pixels), each checked by
the command in a fresh process under /usr/bin/time (wall seconds, peak RSS).

    python tests/benchmarks/data_check_scale.py --root /tmp/check-scale --files 10000 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from photos import make_photo_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--files", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print("| files | seconds | peak RSS (MiB) | summary |")
    print("|---|---|---|---|")
    for n in args.files:
        folder = args.root / f"photos-{n}"
        if not folder.exists():
            make_photo_folder(folder, per_class=n // 6, seed=3)
        command = [sys.executable, "-m", "cnnkeras", "data", "check", f"folder:{folder}"]
        command += ["--out", str(args.root / f"out-{n}"), "--quiet"]
        timed = ["/usr/bin/time", "-f", "%e %M", *command]
        proc = subprocess.run(timed, capture_output=True, text=True, check=True)
        seconds, kib = proc.stderr.strip().splitlines()[-1].split()
        line = json.loads((args.root / f"out-{n}" / "data_check.json").read_text())["summary"]
        print(f"| {n:,} | {float(seconds):.0f} | {int(kib) / 1024:.0f} | {line} |")


if __name__ == "__main__":
    main()
