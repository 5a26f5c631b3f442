"""``cnnkeras data preview``: the first images of a run's first training step, exactly as
``train`` with the same options would draw them, without building a model or a run folder."""

from __future__ import annotations

from pathlib import Path

from cnnkeras import _io
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._setup import (
    first_batch_png,
    input_size,
    load_data,
    plan_run,
    preprocessing_for,
)


def preview(config: TrainConfig, out: str | Path, verbose: int = 1) -> dict:
    """Write the grid of ``config``'s first training batch to ``out`` (a PNG)."""
    config.validate()
    _io.check_writable(Path(out).parent, "out")
    size = input_size(config)
    data = load_data(config, verbose=verbose)
    prep = preprocessing_for(config.arch, size, data.channels, config.resize)
    plan = plan_run(config, data, prep, verbose=0)
    _io.write_bytes(out, first_batch_png(data, prep, plan, config.seed))
    return {"png": str(out), "augment": list(plan.augment), "batch_size": plan.batch_size}
