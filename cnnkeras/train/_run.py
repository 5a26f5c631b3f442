"""The training loop around ``model.fit``: ``train`` and ``resume`` of a run folder.

Crash safety: after every epoch the history row is appended first, then the full model with
its optimizer state is saved atomically as ``checkpoint/epoch-NNNN.keras`` (the commit point),
then the best model. Resuming loads the newest checkpoint, drops history rows past it, and
rebuilds the early-stopping and learning-rate state from the history itself; the plan
(batch size, steps per execution, schedule, cache) and the split come from the run folder.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path

import keras

from cnnkeras import _io
from cnnkeras._files import (
    CACHE_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    LOGS_DIR,
    LR_FIND_FILE,
    SKIPPED_FILE,
)
from cnnkeras.data import DecodeTally, Preprocessing, absolute_spec
from cnnkeras.train import _multihost
from cnnkeras.train._callbacks import (
    MONITOR,
    AveragedWeights,
    ResumableEarlyStopping,
    ResumableReduceLR,
    RunCheckpoint,
    TimeBudget,
    last_checkpoint,
    rate_at,
)
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import make_strategy
from cnnkeras.train._finish import finish_run
from cnnkeras.train._fitdata import fit_callbacks, fit_pipelines
from cnnkeras.train._folder import Run, claim_run_dir, report_title, start_run
from cnnkeras.train._history import read_history, write_history
from cnnkeras.train._lr_find import auto_lr, lr_find_png, lr_find_record
from cnnkeras.train._optim import compile_for_training
from cnnkeras.train._plan import DECAYING, TrainingPlan
from cnnkeras.train._resume import FRESH, ResumeState, load_checkpoint, relocate, resumed_dataset
from cnnkeras.train._setup import load_data, prepare, seed_everything


def train(
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    verbose: int = 1,
    record: dict | None = None,
    restart: bool = False,
) -> dict:
    """Train ``config.arch`` on ``config.dataset`` into a new run folder; return the summary.
    ``lr='auto'`` runs the learning-rate range test first and trains at its suggestion
    (recorded in config.json, with the curve as lr_find.png). ``record``: more fields for
    config.json (a run started again keeps where its rate came from); ``restart``: start
    again in ``run_dir``, a run that never completed an epoch."""
    config = dataclasses.replace(config, dataset=absolute_spec(config.dataset))
    _io.check_writable(Path(run_dir).parent if run_dir else config.out)
    size, data, prep, model, plan = prepare(config, verbose)
    config, found = auto_lr(config, model, plan, data, prep, verbose)
    compile_for_training(model, config, plan)
    cluster = _multihost.current()
    if cluster is not None and not cluster.writer:  # process 0 writes the run folder
        folder, verbose = _multihost.scratch_folder(Path("run"), copy=False), 0
    else:
        folder = Path(run_dir) if run_dir else claim_run_dir(config, data.name)
    options = {**config.to_dict(), "image_size": size, **(record or {}), **lr_find_record(found)}
    run = start_run(
        folder,
        config,
        options,
        data,
        prep,
        model,
        plan,
        title=report_title(config),
        verbose=verbose,
        restart=restart,
    )
    if found is not None:
        _io.write_bytes(
            folder / LR_FIND_FILE, lr_find_png(found, f"{config.arch} on {config.dataset}")
        )
    return _fit(run, start_epoch=0, verbose=verbose)


def resume_training(
    run: Path,
    record: dict,
    plan: TrainingPlan,
    config: TrainConfig,
    *,
    dataset: str | None,
    verbose: int,
) -> dict:
    """Continue an unfinished training run (``read_run``'s record, plan and options) from its
    last completed epoch, with what it would have seen had it not stopped (``resume``)."""
    config = resumed_dataset(config, dataset)
    strategy = make_strategy(config.distribute, config.devices, verbose)  # before TF's devices
    cluster = _multihost.current()
    if cluster is not None and cluster.process_id == 0:
        _multihost.barrier("resume: copied")  # before process 0 changes the folder
    elif cluster is not None:  # works on a copy; process 0 writes the run folder
        run, verbose = _multihost.scratch_folder(run, copy=True), 0
        _multihost.barrier("resume: copied")
    seed_everything(config.seed)
    data = load_data(config, run, verbose)
    last = last_checkpoint(run)
    if last is None:  # killed during the first epoch: start over in the same folder
        _io.log(verbose, "no completed epoch to resume from; starting the run again")
        kept = {k: record[k] for k in ("lr_find",) if k in record}  # the rate's origin
        if cluster is not None and not cluster.writer:
            _multihost.discard_scratch(run)  # train gives this process a scratch folder anew
        return train(config, run_dir=run, verbose=verbose, record=kept, restart=True)
    model, epoch = load_checkpoint(*last, strategy)
    rows = [r for r in read_history(run / HISTORY_FILE) if r["epoch"] <= epoch]
    state = ResumeState.from_history(rows, plan.early_stop_from)
    # checked; from here on the run's files change
    if config.dataset != record["dataset"]:
        relocate(run, record, data)
    write_history(run / HISTORY_FILE, rows)
    state.save_best(model, run, rows)
    resumed = Run(
        run,
        config,
        plan,
        data,
        Preprocessing.from_dict(record["preprocessing"]),
        model,
        record,
        report_title(config),
    )
    if state.stopped(config.patience):  # killed after early stopping, before the report
        return _finish(resumed, time.perf_counter(), verbose, status="early_stopped")
    _io.log(verbose, f"resuming {run} after epoch {epoch + 1} of {plan.epochs}")
    return _fit(resumed, start_epoch=epoch + 1, verbose=verbose, state=state)


def fit_epochs(
    run: Run,
    *,
    start_epoch: int,
    epochs: int,
    verbose: int,
    state: ResumeState = FRESH,
    extra: dict | None = None,
) -> RunCheckpoint:
    """``model.fit`` from ``start_epoch`` to ``epochs`` with the run's callbacks, which start
    from ``state`` (after a restart, or the best model of an earlier phase)."""
    config, plan, data, folder = run.config, run.plan, run.data, run.folder
    averaged = AveragedWeights() if run.model.optimizer.use_ema else None
    checkpoint = RunCheckpoint(folder, *(state.best or ()), extra=extra, averaged=averaged)
    tallies = {name: DecodeTally(data.splits[name]) for name in ("train", "val")}
    fit_data = fit_pipelines(
        run.model,
        data,
        run.prep,
        plan,
        seed=config.seed,
        augment=plan.augment,
        cache_dir=folder / CACHE_DIR,
        tallies=tallies,
        start_epoch=start_epoch,
    )
    if start_epoch < epochs:
        run.model.fit(
            **fit_data.fit_kwargs(),
            epochs=epochs,
            initial_epoch=start_epoch,
            callbacks=fit_callbacks(fit_data, averaged, _run_control(run, state, checkpoint)),
            verbose=2 if verbose else 0,
            shuffle=False,
        )
        _report_decode_failures(folder, [tallies["train"], tallies["val"]], verbose)
    if checkpoint.nan_epoch is not None:
        _io.log(
            1,
            f"loss became NaN at epoch {checkpoint.nan_epoch + 1}; stopped and kept the "
            f"best model (epoch {checkpoint.best_epoch + 1}); try a lower `lr`",
        )
    return checkpoint


def _run_control(run: Run, state: ResumeState, checkpoint: RunCheckpoint) -> list:
    """A run's own callbacks, after the weight average and precise batch norm: early stopping,
    the plateau schedule, TensorBoard, the checkpoint (it records the learning rate after any
    reduction) and the time budget."""
    config, plan = run.config, run.plan
    callbacks: list = [
        ResumableEarlyStopping(
            monitor=MONITOR,
            mode="max",
            patience=config.patience,
            start_from_epoch=plan.early_stop_from,
            restore=state.early_stop,
        )
    ]
    if plan.schedule == "plateau":
        callbacks.append(
            ResumableReduceLR(
                monitor=MONITOR,
                mode="max",
                factor=0.5,
                patience=max(2, config.patience // 3),
                min_lr=config.lr / 100,
                restore=state.plateau,
            )
        )
    callbacks += [
        keras.callbacks.TensorBoard(log_dir=str(run.folder / LOGS_DIR), write_graph=False),
        checkpoint,
    ]
    if config.budget_seconds:
        rate = partial(rate_at, config.lr, plan) if plan.schedule in DECAYING else None
        reserve = config.budget_reserve_seconds
        callbacks.append(TimeBudget(config.budget_seconds, reserve, rate, plan.total_steps))
    return callbacks


def _report_decode_failures(run: Path, tallies: list[DecodeTally], verbose: int) -> list[str]:
    """Files that failed to decode during training: counted in config.json, listed in
    skipped.txt, and said once."""
    failed = sorted({path for tally in tallies for path in tally.failed()})
    if failed:
        _io.write_text(run / SKIPPED_FILE, "\n".join(failed) + "\n")
        record = _io.read_json(run / CONFIG_FILE)
        record["decode_failures"] = len(failed)
        _io.write_json(run / CONFIG_FILE, record)
        _io.log(
            verbose,
            f"skipped {len(failed)} file(s) that failed to decode, e.g. "
            f"{failed[0]}; list in {run / SKIPPED_FILE}",
        )
    return failed


def _fit(run: Run, *, start_epoch: int, verbose: int, state: ResumeState = FRESH):
    started = time.perf_counter()
    try:
        checkpoint = fit_epochs(
            run, start_epoch=start_epoch, epochs=run.plan.epochs, verbose=verbose, state=state
        )
    except Exception as error:
        if _multihost.current() is None:
            raise
        _multihost.abandon(error, run.folder)
    status = "nan" if checkpoint.nan_epoch is not None else None
    return _finish(run, started, verbose, status=status)


def _finish(run: Run, started: float, verbose: int, *, status: str | None = None) -> dict:
    """The report of a run whose training ended (``status``, or done or early stopped as its
    history says)."""
    rows = read_history(run.folder / HISTORY_FILE)
    if status is None:
        status = "early_stopped" if len(rows) < run.plan.epochs else "done"
    seconds = time.perf_counter() - started
    cluster = _multihost.current()
    if cluster is not None:
        if not cluster.writer:
            _multihost.discard_scratch(run.folder)
            return {"status": status, "process": cluster.process_id, "fit_seconds": seconds}
        return _multihost.finish_in_tensorflow(run.folder, status, seconds, verbose)
    return finish_run(run, status=status, seconds=seconds, verbose=verbose)
