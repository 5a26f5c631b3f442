"""What accurate JPEG decoding costs: TensorFlow's fast IDCT (its default) against libjpeg's
accurate one (what PIL, OpenCV and phones use, and the pipeline since the phone work), on the
real photos of tests/photos.py, small and large; median of interleaved rounds.

    python tests/benchmarks/jpeg_decode.py [--rounds 7]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from photos import make_photo_folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        root = make_photo_folder(Path(tmp), per_class=45, large=2)
        files = sorted(root.rglob("*.jpg"))
        groups = {
            "small (30-125 px)": [f for f in files if "_large_" not in f.name],
            "large (1,000-1,400 px)": [f for f in files if "_large_" in f.name],
        }
        for name, paths in groups.items():
            blobs = [tf.io.read_file(str(p)) for p in paths]
            times = {"fast": [], "accurate": []}
            for _ in range(args.rounds):
                for method, dct in (("fast", ""), ("accurate", "INTEGER_ACCURATE")):
                    started = time.perf_counter()
                    for blob in blobs:
                        tf.io.decode_jpeg(blob, channels=3, dct_method=dct)
                    times[method].append((time.perf_counter() - started) / len(blobs))
            fast, accurate = (statistics.median(times[m]) * 1e3 for m in ("fast", "accurate"))
            print(
                f"{name}: {len(blobs)} files, fast {fast:.3f} ms, accurate {accurate:.3f} ms"
                f" a file ({accurate / fast:.2f}x)"
            )


if __name__ == "__main__":
    main()
