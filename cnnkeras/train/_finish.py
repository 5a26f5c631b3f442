"""The end of a multi-host run, in a child process on the TensorFlow backend: the test-split
report (its Grad-CAM takes gradients with TensorFlow's tape) from the run folder alone, as
``resume`` would read it. Also shows that the model JAX trained loads under TensorFlow.

``python -m cnnkeras.train._finish RUN_DIR STATUS SECONDS VERBOSE`` prints the result as
the last line of JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from cnnkeras import _io
    from cnnkeras._spawn import import_tensorflow_quietly

    import_tensorflow_quietly()
    from cnnkeras.data import Preprocessing
    from cnnkeras.saved import CONFIG_FILE
    from cnnkeras.train._config import TrainConfig
    from cnnkeras.train._plan import TrainingPlan
    from cnnkeras.train._run import Run, _title, finish_run, load_data

    folder, status, seconds, verbose = Path(argv[0]), argv[1], float(argv[2]), int(argv[3])
    record = _io.read_json(folder / CONFIG_FILE)
    config = TrainConfig.from_record(record)
    data = load_data(config, folder, verbose=0)
    prep = Preprocessing.from_dict(record["preprocessing"])
    plan = TrainingPlan.from_dict(record["plan"])
    run = Run(folder, config, plan, data, prep, None, record, _title(config))
    result = finish_run(run, status=status, seconds=seconds, verbose=verbose)
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
