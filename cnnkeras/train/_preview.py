"""``cnnkeras data preview``: the first images of a run's first training step, exactly as
``train`` with the same options would draw them, without building a model or a run folder."""

from __future__ import annotations

from pathlib import Path

from cnnkeras import _io
from cnnkeras.data._preview import batch_png
from cnnkeras.models import model_info
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._run import load_data, make_plan, preprocessing_for


def preview(config: TrainConfig, out: str | Path, verbose: int = 1) -> dict:
    """Write the grid of ``config``'s first training batch to ``out`` (a PNG)."""
    config.validate()
    _io.check_writable(Path(out).parent, "out")
    data = load_data(config, verbose=verbose)
    size = model_info(config.arch).image_size(config.image_size)
    prep = preprocessing_for(config.arch, size, data.channels, config.resize)
    plan = make_plan(config, data, prep, verbose=0)
    png = batch_png(
        data.splits["train"],
        data.class_names,
        prep,
        augment=plan.augment,
        mix=dict(plan.mix),
        seed=config.seed,
        batch_size=plan.batch_size,
    )
    _io.write_bytes(out, png)
    return {"png": str(out), "augment": list(plan.augment), "batch_size": plan.batch_size}
