"""The search itself: a hypermodel that samples builder and training options and calls
``create_model`` (never a second copy of a network), tuners that record each trial's wall time,
size and memory, results tables and plots, and a chief with workers on loopback.

Keras Tuner keeps its oracle state in the search folder: running the same search again after
a kill reloads it, keeps finished trials and re-runs only the one that was under way. Trials
run in child processes that hand over to a fresh one once they have grown by
``max_memory_growth_mb``: TensorFlow keeps memory after ``clear_session`` (about 10 MiB a
LeNet-5 trial here) that only the end of a process gives back.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
import os
import socket
import threading
import time
from contextlib import nullcontext, redirect_stdout
from pathlib import Path

import keras
import keras_tuner as kt

from cnnkeras import _io
from cnnkeras._spawn import Child, Died
from cnnkeras.data import load_dataset
from cnnkeras.errors import UserError
from cnnkeras.models import create_model, model_info
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._plan import plan_training
from cnnkeras.train._run import (
    compile_for_training,
    plan_pipelines,
    preprocessing_for,
    seed_everything,
)
from cnnkeras.tuning._experiment import MEMORY_GROWTH_MB, TRAINING_HPS, Experiment
from cnnkeras.tuning._kt import retries_pending, save_all_trials

PROJECT = "search"
EXTRA = "cnnkeras.json"  # attempts, wall time, epochs, parameters and memory, per trial folder
MAX_DEATHS = 2  # a trial whose process died this often is recorded FAILED, not run again
TUNER_ID = "KERASTUNER_TUNER_ID"  # Keras Tuner's distributed mode: chief, tuner0, tuner1, ...


def sample(hp: kt.HyperParameters, name: str, spec):
    """A hyperparameter from its spec: a list or {values}, or {min, max[, step, sampling]}."""
    if isinstance(spec, list):
        spec = {"values": spec}
    if "values" in spec:
        return hp.Choice(name, spec["values"])
    low, high = spec["min"], spec["max"]
    if isinstance(low, int) and isinstance(high, int) and "sampling" not in spec:
        return hp.Int(name, low, high, step=spec.get("step", 1))
    return hp.Float(
        name,
        float(low),
        float(high),
        step=spec.get("step"),
        sampling=spec.get("sampling", "linear"),
    )


class ZooHyperModel(kt.HyperModel):
    """Builds the experiment's architecture with sampled options through ``create_model``."""

    def __init__(self, experiment: Experiment, data, prep):
        super().__init__(name=experiment.name)
        self.experiment = experiment
        self.data = data
        self.prep = prep
        self.info = model_info(experiment.arch)
        self.cache_dir = experiment.out / "cache"

    def build(self, hp):
        space = self.experiment.space(self.info.family)
        options = {k: sample(hp, k, v) for k, v in space.items() if k not in TRAINING_HPS}
        unknown = sorted(set(options) - set(self.info.options))
        if unknown:
            raise UserError(
                f"{self.experiment.arch} has no option(s) {', '.join(unknown)} to "
                f"search; it takes {', '.join(self.info.options)}"
            )
        for name in TRAINING_HPS:  # sampled here too, so that every trial records them
            if name in space:
                sample(hp, name, space[name])
        return create_model(
            self.experiment.arch,
            input_shape=self.prep.input_shape,
            num_classes=self.data.num_classes,
            **self.experiment.model_options,
            **options,
        )

    def fit(self, hp, model, *args, callbacks=None, epochs=None, **kwargs):
        """Train as ``cnnkeras train`` would: the same plan ('auto' batch size, steps per
        execution, schedule), pipelines and precise batch-norm statistics. Each trial builds
        its own pipelines, so that it sees the same shuffles whatever ran before it in its
        process (and a search gives the same results however it is split into processes)."""
        experiment = self.experiment
        space = experiment.space(self.info.family)
        picked = {k: sample(hp, k, space[k]) for k in TRAINING_HPS if k in space}
        initial_epoch = int(kwargs.get("initial_epoch", 0))
        epochs = epochs or experiment.epochs
        config = TrainConfig(
            arch=experiment.arch,
            dataset=experiment.dataset,
            epochs=max(1, epochs - initial_epoch),
            batch_size=picked.get("batch_size", experiment.batch_size),
            lr=picked.get("lr", 1e-3),
            optimizer=picked.get("optimizer", "adam"),
            schedule=experiment.schedule,
            warmup_epochs=experiment.warmup_epochs,
            cache=experiment.cache,
            seed=experiment.seed,
        )
        splits = self.data.splits
        plan = plan_training(
            config, len(splits["train"]), len(splits["val"]), self.prep, config.cache_budget_mb
        )
        compile_for_training(model, config, plan)
        fit_data = plan_pipelines(
            model,
            self.data,
            self.prep,
            plan,
            seed=experiment.seed,
            augment=(),
            cache_dir=self.cache_dir,
        )
        started = time.perf_counter()
        history = model.fit(
            **fit_data.fit_kwargs(),
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=[*fit_data.callbacks, *(callbacks or []), keras.callbacks.TerminateOnNaN()],
            verbose=0,
            shuffle=False,
        )
        losses = history.history.get("loss", [])
        # what the trial cost, for the tuner's run_trial: it gets this history (or error) back
        record = {
            "seconds": time.perf_counter() - started,
            "epochs": len(losses),
            "params": int(model.count_params()),
            "batch_size": plan.batch_size,
        }
        if not losses or not all(math.isfinite(v) for v in losses):
            error = kt.errors.FailedTrialError("loss became NaN; lower the learning rate")
            error.trial_record = record
            raise error
        history.trial_record = record
        return history


def _rss_mb() -> float:
    import psutil  # a dependency of keras-tuner

    return psutil.Process().memory_info().rss / 2**20


class _Handover(Exception):
    """Between two trials: this process has grown enough to hand over to a fresh one."""


class _Recording:
    """Mixed into a Keras Tuner class: seeds each trial from its id, keeps its attempts, wall
    time, epochs, size and memory in its folder, fails a trial whose process keeps dying, and
    hands over to a fresh process once this one has grown by ``max_growth_mb``."""

    max_growth_mb: float | None = None  # None: every trial in this process
    _baseline_mb: float | None = None  # memory after this process's first completed trial

    def pre_create_trial(self):
        super().pre_create_trial()
        if self.max_growth_mb is None or self._baseline_mb is None or self._budget_spent():
            return
        if self.max_growth_mb <= 0 or _rss_mb() - self._baseline_mb > self.max_growth_mb:
            raise _Handover

    def _budget_spent(self) -> bool:
        """Whether the oracle will only say stop: then this process says it, not a new one."""
        oracle = self.oracle
        trials, limit = getattr(oracle, "trials", None), getattr(oracle, "max_trials", None)
        created_all = bool(limit) and trials is not None and len(trials) >= limit
        return created_all and not retries_pending(oracle)

    def run_trial(self, trial, *args, **kwargs):
        # one file per trial: workers of a distributed search write side by side
        path = Path(self.get_trial_dir(trial.trial_id)) / EXTRA
        record = _io.read_json(path)
        started = record.get("started", 0)
        died = started - record.get("finished", 0)
        if died >= MAX_DEATHS:
            raise kt.errors.FailedTrialError(
                f"the process running this trial ended {died} times before the trial did "
                "(killed, or out of memory); not run again"
            )
        _io.write_json(path, {**record, "started": started + 1})
        # the same trial gives the same model whichever process runs it, after whatever
        keras.utils.set_random_seed(self.hypermodel.experiment.seed + int(trial.trial_id))
        completed, measured = False, {}
        try:
            result = super().run_trial(trial, *args, **kwargs)
            completed = True
            histories = result if isinstance(result, list) else [result]
            measured = getattr(histories[-1], "trial_record", {})
        except Exception as error:
            measured = getattr(error, "trial_record", {})
            raise
        finally:
            # Keras Tuner clears the session before a build; clearing after the trial too
            # (with a garbage collection) returns its graphs before the next one.
            keras.backend.clear_session(free_memory=True)
            rss = _rss_mb()
            if completed and self._baseline_mb is None:
                self._baseline_mb = rss
            record = {**record, **measured, "rss_mb": round(rss, 1), "pid": os.getpid()}
            _io.write_json(path, {**record, "started": started + 1, "finished": started + 1})
        return result


class RecordingRandomSearch(_Recording, kt.RandomSearch):
    pass


class RecordingHyperband(_Recording, kt.Hyperband):
    pass


class RecordingBayesianOptimization(_Recording, kt.BayesianOptimization):
    pass


TUNER_CLASSES = {
    "random": RecordingRandomSearch,
    "hyperband": RecordingHyperband,
    "bayesian": RecordingBayesianOptimization,
}


def make_tuner(
    experiment: Experiment, hypermodel: ZooHyperModel, max_growth_mb: float | None = None
):
    """The experiment's Keras Tuner tuner, reloaded from its folder when one is there."""
    cls = TUNER_CLASSES[experiment.tuner]
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(experiment.objective, direction=experiment.direction),
        seed=experiment.seed,
        directory=str(experiment.out),
        project_name=PROJECT,
        overwrite=False,
        max_retries_per_trial=experiment.retry_failed,
        max_consecutive_failed_trials=3,
    )
    if experiment.tuner == "hyperband":
        tuner = cls(max_epochs=experiment.epochs, hyperband_iterations=1, **common)
    else:
        tuner = cls(max_trials=experiment.max_trials, **common)
    tuner.max_growth_mb = max_growth_mb
    return tuner


def _prepare(experiment: Experiment):
    info = model_info(experiment.arch)
    data = load_dataset(experiment.dataset, seed=experiment.seed)
    size = info.image_size(experiment.image_size)
    if size < info.min_size:
        raise UserError(f"image_size {size} is below {experiment.arch}'s minimum {info.min_size}")
    return data, preprocessing_for(experiment.arch, size, data.channels)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _search_process(
    fields: dict, max_growth_mb: float | None, verbose: int, handover: bool
) -> bool:
    """Run trials in this process until the search is over (True) or this process has grown
    by ``max_growth_mb`` and hands over to a fresh one (False)."""
    experiment = Experiment(**fields)
    seed_everything(experiment.seed)
    tf_logger = logging.getLogger("tensorflow")
    if _RetraceFilter not in map(type, tf_logger.filters):
        tf_logger.addFilter(_RetraceFilter())
    data, prep = _prepare(experiment)
    with redirect_stdout(io.StringIO()) if handover else nullcontext():  # "Reloading Tuner ..."
        tuner = make_tuner(experiment, ZooHyperModel(experiment, data, prep), max_growth_mb)
    try:
        tuner.search(verbose=verbose)
    except _Handover:
        return False
    except RuntimeError as err:  # Keras Tuner's stop after too many failures in a row
        if "consecutive" not in str(err):
            raise
        save_all_trials(tuner.oracle)
        raise UserError(
            f"the search stopped: 3 trials in a row failed; reasons in "
            f"{experiment.out / 'trials.csv'}"
        ) from None
    return True


class _RetraceFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning: every trial is a new
    model with new functions, which is what a search is, not a mistake to warn about."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "tf.function retracing" not in record.getMessage()


class _Role:
    """One part of a search (the whole of it, the chief, or one worker) played by one process
    at a time: a process that hands over, or dies, is followed by a fresh one until the
    search is over. Three deaths in a row, with no trial finished between, end the search."""

    def __init__(self, experiment: Experiment, max_growth_mb, verbose: int, env=None):
        self.args = (dataclasses.asdict(experiment), max_growth_mb, verbose)
        self.env, self.child, self.error, self.stopped = env or {}, None, None, False

    def play(self) -> None:
        deaths, handover = 0, False
        while not self.stopped:
            self.child = Child(
                "cnnkeras.tuning._search:_search_process", *self.args, handover, env=self.env
            )
            done = self.child.wait()
            if isinstance(done, Died):
                deaths += 1
                if deaths == 3:
                    raise UserError(
                        f"the search process ended 3 times in a row ({done}); free some "
                        "memory or lower `batch_size`, then run the same command again"
                    )
            elif done:
                return
            else:
                deaths = 0
            handover = True

    def play_in_thread(self) -> threading.Thread:
        def target():
            try:
                self.play()
            except (UserError, RuntimeError) as err:
                self.error = err

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopped = True
        if self.child is not None:
            self.child.terminate()


def run_search(
    experiment: Experiment,
    *,
    workers: int = 0,
    host: str = "127.0.0.1",
    max_memory_growth_mb: float | None = MEMORY_GROWTH_MB,
    verbose: int = 1,
) -> dict:
    """Run (or resume) a search and write its results into ``experiment.out``.

    Trials run in a child process that hands over to a fresh one once it has grown by
    ``max_memory_growth_mb`` since its first trial (0: a fresh process for every trial;
    None: every trial in this process). With ``workers`` > 0, a chief oracle listens on
    ``host`` (loopback by default) and that many workers run the trials.
    """
    if workers < 0:
        raise UserError("`workers` must be >= 0")
    if max_memory_growth_mb is not None and not max_memory_growth_mb >= 0:  # NaN too
        raise UserError(
            "`max_memory_growth_mb` must be >= 0 (0: a fresh process per trial) or None"
        )
    experiment.out.mkdir(parents=True, exist_ok=True)
    _io.write_json(experiment.out / "experiment.json", experiment.__dict__)
    try:
        if max_memory_growth_mb is None and not workers:
            _search_process(dataclasses.asdict(experiment), None, verbose, False)
        elif not workers:
            _Role(experiment, max_memory_growth_mb, verbose).play()
        else:
            _distributed(experiment, workers, host, max_memory_growth_mb, verbose)
    except UserError:
        if any((experiment.out / PROJECT).glob("trial_*/trial.json")):
            write_results(experiment, verbose=0)  # the trials so far, failure reasons included
        raise
    if "KERASTUNER_ORACLE_IP" in os.environ:
        return {}  # this command is the chief or a worker of a larger search: no results here
    return write_results(experiment, verbose=verbose)


def _distributed(experiment: Experiment, workers: int, host: str, max_growth_mb, verbose: int):
    """A chief oracle on ``host`` and ``workers`` workers, all on this machine; returns when
    the search is over."""
    env = {"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(_free_port())}
    chief = _Role(experiment, None, verbose, {**env, TUNER_ID: "chief"})
    chief_thread = chief.play_in_thread()  # workers wait for it: Keras Tuner's wait_for_ready
    roles = [
        _Role(experiment, max_growth_mb, verbose, {**env, TUNER_ID: f"tuner{i}"})
        for i in range(workers)
    ]
    for thread in [role.play_in_thread() for role in roles]:
        thread.join()
    chief_thread.join(timeout=120)
    chief.stop()
    errors = [role.error for role in [*roles, chief] if role.error]
    if errors:
        raise UserError(f"{len(errors)} search process(es) failed: {errors[0]}")


def _load_trials(experiment: Experiment) -> tuple[list[dict], list[str]]:
    """Every trial as Keras Tuner saved it, in trial order, and the hyperparameters' names."""
    root = experiment.out / PROJECT
    order = list(experiment.space(model_info(experiment.arch).family))
    rows, hp_names = [], {}
    for path in sorted(root.glob("trial_*/trial.json")):
        t = json.loads(path.read_text())
        found = t["hyperparameters"]["values"]
        names = [k for k in order if k in found] + sorted(
            k for k in found if k not in order and not k.startswith("tuner/")
        )
        hp_names.update(dict.fromkeys(names))
        more = _io.read_json(path.parent / EXTRA)
        message = (t.get("message") or "").strip().splitlines()
        rows.append(
            {
                "trial_id": t["trial_id"],
                "status": t["status"],
                **{k: found[k] for k in names},
                experiment.objective: t.get("score"),
                "epochs": more.get("epochs"),
                "seconds": round(more["seconds"], 2) if "seconds" in more else None,
                "params": more.get("params"),
                "rss_mb": more.get("rss_mb"),
                "message": message[-1] if message else "",
            }
        )
    return rows, list(hp_names)


def write_results(experiment: Experiment, verbose: int = 1) -> dict:
    """trials.csv, best_hyperparameters.json, plots and summary.md from the search folder."""
    import csv

    from cnnkeras.tuning._plots import objective_plots

    rows, hp_names = _load_trials(experiment)
    if not rows:
        raise UserError(f"no trials found in {experiment.out}")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _io.write_text(experiment.out / "trials.csv", buf.getvalue())
    done = [r for r in rows if r["status"] == "COMPLETED" and r[experiment.objective] is not None]
    sign = 1 if experiment.maximize else -1
    best = max(done, key=lambda r: sign * r[experiment.objective]) if done else None
    result = {
        "experiment": experiment.name,
        "trials": len(rows),
        "completed": len(done),
        "failed": sum(r["status"] == "FAILED" for r in rows),
        "best": best,
        "out": str(experiment.out),
    }
    if best:
        _io.write_json(
            experiment.out / "best_hyperparameters.json",
            {k: best[k] for k in hp_names if best.get(k) is not None}
            | {experiment.objective: best[experiment.objective], "trial_id": best["trial_id"]},
        )
    plots = objective_plots(rows, hp_names, experiment.objective, experiment.maximize)
    for name, png in plots.items():
        _io.write_bytes(experiment.out / name, png)
    lines = [
        f"# {experiment.name}: {experiment.tuner} search of {experiment.arch} on "
        f"{experiment.dataset}",
        "",
        f"- trials: {len(rows)} ({len(done)} completed, {result['failed']} failed)",
    ]
    if best:
        lines.append(
            f"- best {experiment.objective}: {best[experiment.objective]:.4f} "
            f"(trial {best['trial_id']}: " + ", ".join(f"{k}={best[k]}" for k in hp_names) + ")"
        )
    lines += ["", "| " + " | ".join(columns[:-1]) + " |", "|" + "---|" * (len(columns) - 1)]
    for r in rows:
        lines.append(
            "| "
            + " | ".join(
                "" if r[c] is None else (f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]))
                for c in columns[:-1]
            )
            + " |"
        )
    lines += [
        "",
        "![objective per trial](objective_per_trial.png)",
        "![objective against each hyperparameter](objective_vs_hyperparameters.png)",
    ]
    _io.write_text(experiment.out / "summary.md", "\n".join(lines) + "\n")
    if verbose and best:
        print(
            f"best {experiment.objective} {best[experiment.objective]:.4f} "
            f"(trial {best['trial_id']}); results in {experiment.out}"
        )
    return result


def retrain_best(experiment: Experiment, epochs: int | None = None, verbose: int = 1) -> dict:
    """Retrain the best configuration with ``cnnkeras train`` into saved_models/."""
    from cnnkeras.train import train

    best_path = experiment.out / "best_hyperparameters.json"
    if not best_path.is_file():
        raise UserError(f"no best_hyperparameters.json in {experiment.out}; run the search first")
    best = json.loads(best_path.read_text())
    family = model_info(experiment.arch).family
    space = experiment.space(family)
    options = {k: best[k] for k in space if k in best and k not in TRAINING_HPS}
    config = TrainConfig(
        arch=experiment.arch,
        dataset=experiment.dataset,
        image_size=experiment.image_size,
        epochs=epochs or 4 * experiment.epochs,
        lr=best.get("lr", 1e-3),
        optimizer=best.get("optimizer", "adam"),
        batch_size=best.get("batch_size", experiment.batch_size),
        schedule=experiment.schedule,
        warmup_epochs=experiment.warmup_epochs,
        cache=experiment.cache,
        seed=experiment.seed,
        model_options={**experiment.model_options, **options},
    )
    if "dropout" in options:
        config.dropout = options.pop("dropout")
        config.model_options.pop("dropout", None)
    return train(config, verbose=verbose)


__all__ = ["ZooHyperModel", "make_tuner", "retrain_best", "run_search", "write_results"]
