"""What installing jax (for multi-host runs) costs the default TensorFlow path: TensorFlow's
tf.lite imports jax when it is installed. Median of N fresh processes each: the import of
cnnkeras.train, and a short default training run (digits, 16 px, 3 epochs, fit seconds).

Run once with jax installed and once without (``pip uninstall -y jax jaxlib``), alone:
``python tests/benchmarks/jax_cost.py [N]``; prints one JSON line."""

import json
import statistics
import subprocess
import sys
import tempfile

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5
IMPORT = (
    "import time; t = time.perf_counter(); import cnnkeras.train; print(time.perf_counter() - t)"
)
TRAIN = (
    "import sys; from cnnkeras.train import TrainConfig, train; "
    "config = TrainConfig(dataset='digits', image_size=16, epochs=3, out=sys.argv[1]); "
    "r = train(config, verbose=0); "
    "print(r['fit_seconds'])"
)


def median_of(code: str, *args: str) -> float:
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(N)
    ]
    return statistics.median(runs)


def main() -> None:
    try:
        import jax

        version = jax.__version__
    except ImportError:
        version = None
    with tempfile.TemporaryDirectory() as out:
        result = {
            "jax": version,
            "import_s": round(median_of(IMPORT), 3),
            "train_fit_s": round(median_of(TRAIN, out), 3),
            "runs": N,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
