"""The search itself: a hypermodel that samples builder and training options and calls
``create_model`` (never a second copy of a network), tuners that record each trial's wall time
and size, results tables and plots, and a chief with workers on loopback for distributed runs.

Keras Tuner keeps its oracle state in the search folder: running the same search again after
a kill reloads it, keeps finished trials and re-runs only the one that was under way.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt

from cnnkeras import _io
from cnnkeras.data import load_dataset, make_pipeline
from cnnkeras.errors import UserError
from cnnkeras.models import create_model, model_info
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._run import compile_for_training, preprocessing_for, seed_everything
from cnnkeras.tuning._experiment import TRAINING_HPS, Experiment

PROJECT = "search"
EXTRA = "cnnkeras.json"  # wall time, epochs and parameters, in each trial's folder


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
        self.last: dict = {}
        self._cache: dict = {}

    def _pipelines(self, batch: int):
        """One pair of tf.data pipelines per batch size for the whole search: new ones every
        trial would trace new dataset functions that TensorFlow keeps until the process ends."""
        if batch not in self._cache:
            train = make_pipeline(
                self.data.splits["train"],
                self.prep,
                self.data.num_classes,
                batch_size=batch,
                training=True,
                seed=self.experiment.seed,
            )
            val = make_pipeline(self.data.splits["val"], self.prep, self.data.num_classes)
            self._cache[batch] = (train, val)
        return self._cache[batch]

    def build(self, hp):
        space = self.experiment.space(self.info.family)
        options = {k: sample(hp, k, v) for k, v in space.items() if k not in TRAINING_HPS}
        unknown = sorted(set(options) - set(self.info.options))
        if unknown:
            raise UserError(
                f"{self.experiment.arch} has no option(s) {', '.join(unknown)} to "
                f"search; it takes {', '.join(self.info.options)}"
            )
        model = create_model(
            self.experiment.arch,
            input_shape=self.prep.input_shape,
            num_classes=self.data.num_classes,
            **self.experiment.model_options,
            **options,
        )
        config = TrainConfig(
            lr=sample(hp, "lr", space["lr"]) if "lr" in space else 1e-3,
            optimizer=sample(hp, "optimizer", space["optimizer"])
            if "optimizer" in space
            else "adam",
        )
        compile_for_training(model, config)
        return model

    def fit(self, hp, model, *args, callbacks=None, epochs=None, **kwargs):
        space = self.experiment.space(self.info.family)
        batch = (
            sample(hp, "batch_size", space["batch_size"])
            if "batch_size" in space
            else self.experiment.batch_size
        )
        train, val = self._pipelines(batch)
        started = time.perf_counter()
        history = model.fit(
            train,
            validation_data=val,
            epochs=epochs or self.experiment.epochs,
            callbacks=[*(callbacks or []), keras.callbacks.TerminateOnNaN()],
            verbose=0,
            shuffle=False,
            **{k: v for k, v in kwargs.items() if k in ("initial_epoch",)},
        )
        losses = history.history.get("loss", [])
        self.last = {
            "seconds": time.perf_counter() - started,
            "epochs": len(losses),
            "params": int(model.count_params()),
        }
        if not losses or not all(math.isfinite(v) for v in losses):
            raise kt.errors.FailedTrialError("loss became NaN; lower the learning rate")
        return history


def _rss_mb() -> float:
    import psutil  # a dependency of keras-tuner

    return psutil.Process().memory_info().rss / 2**20


class _Recording:
    """Mixed into a Keras Tuner class: keeps wall time, epochs and size of every trial."""

    def run_trial(self, trial, *args, **kwargs):
        result = super().run_trial(trial, *args, **kwargs)
        # Keras Tuner clears the session before a build; clearing after the trial too (with a
        # garbage collection) returns the trial's graphs and datasets before the next one.
        keras.backend.clear_session(free_memory=True)
        # one file per trial: workers of a distributed search write side by side
        record = {**self.hypermodel.last, "rss_mb": round(_rss_mb(), 1)}
        _io.write_json(Path(self.get_trial_dir(trial.trial_id)) / EXTRA, record)
        return result


TUNER_CLASSES = {
    "random": kt.RandomSearch,
    "hyperband": kt.Hyperband,
    "bayesian": kt.BayesianOptimization,
}


def make_tuner(experiment: Experiment, hypermodel: ZooHyperModel):
    base = TUNER_CLASSES[experiment.tuner]
    cls = type(f"Recording{base.__name__}", (_Recording, base), {})
    common = dict(
        hypermodel=hypermodel,
        objective=kt.Objective(
            experiment.objective, direction="max" if "acc" in experiment.objective else "min"
        ),
        seed=experiment.seed,
        directory=str(experiment.out),
        project_name=PROJECT,
        overwrite=False,
        max_retries_per_trial=experiment.retry_failed,
        max_consecutive_failed_trials=3,
    )
    if experiment.tuner == "hyperband":
        return cls(max_epochs=experiment.epochs, hyperband_iterations=1, **common)
    return cls(max_trials=experiment.max_trials, **common)


def _prepare(experiment: Experiment):
    info = model_info(experiment.arch)
    data = load_dataset(experiment.dataset, seed=experiment.seed)
    size = experiment.image_size or info.input_shape[0]
    if size < info.min_size:
        raise UserError(f"image_size {size} is below {experiment.arch}'s minimum {info.min_size}")
    return data, preprocessing_for(experiment.arch, size, data.channels)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_search(
    experiment: Experiment,
    *,
    workers: int = 0,
    host: str = "127.0.0.1",
    argv: list[str] | None = None,
    verbose: int = 1,
) -> dict:
    """Run (or resume) a search and write its results into ``experiment.out``.

    With ``workers`` > 0, start a chief oracle on ``host`` (loopback by default) and that many
    worker processes running ``argv`` (this command without --workers), and wait for them.
    """
    experiment.out.mkdir(parents=True, exist_ok=True)
    _io.write_json(experiment.out / "experiment.json", experiment.__dict__)
    if workers:
        port = _free_port()
        env = {**os.environ, "KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port)}
        command = [sys.executable, "-m", "cnnkeras", *(argv or [])]
        chief = subprocess.Popen(command, env={**env, "KERASTUNER_TUNER_ID": "chief"})
        time.sleep(2)  # let the chief open its port before workers connect
        procs = [
            subprocess.Popen(command, env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"})
            for i in range(workers)
        ]
        codes = [p.wait() for p in procs]
        chief.wait(timeout=120)
        if any(codes):
            raise UserError(f"{sum(1 for c in codes if c)} worker(s) failed; see their output")
    else:
        seed_everything(experiment.seed)
        data, prep = _prepare(experiment)
        tuner = make_tuner(experiment, ZooHyperModel(experiment, data, prep))
        try:
            tuner.search(verbose=verbose)
        except RuntimeError as err:  # Keras Tuner's stop after too many failures in a row
            if "consecutive" not in str(err):
                raise
            # Keras Tuner raises before writing the last failed trial to disk
            for trial in tuner.oracle.trials.values():
                tuner.oracle._save_trial(trial)
            write_results(experiment, verbose=0)
            raise UserError(
                f"the search stopped: 3 trials in a row failed; reasons in "
                f"{experiment.out / 'trials.csv'}"
            ) from None
        if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief":
            return {}  # a worker: the parent writes the results
        if "KERASTUNER_ORACLE_IP" in os.environ:
            return {}  # the chief of a distributed run: the parent writes the results
    return write_results(experiment, verbose=verbose)


def _load_trials(experiment: Experiment) -> list[dict]:
    """Every trial as Keras Tuner saved it, in trial order."""
    root = experiment.out / PROJECT
    order = list(experiment.space(model_info(experiment.arch).family))
    rows = []
    for path in sorted(root.glob("trial_*/trial.json")):
        t = json.loads(path.read_text())
        found = t["hyperparameters"]["values"]
        names = [k for k in order if k in found] + sorted(
            k for k in found if k not in order and not k.startswith("tuner/")
        )
        values = {k: found[k] for k in names}
        extra = path.parent / EXTRA
        more = json.loads(extra.read_text()) if extra.is_file() else {}
        rows.append(
            {
                "trial_id": t["trial_id"],
                "status": t["status"],
                **values,
                experiment.objective: t.get("score"),
                "epochs": more.get("epochs"),
                "seconds": round(more["seconds"], 2) if "seconds" in more else None,
                "params": more.get("params"),
                "rss_mb": more.get("rss_mb"),
                "message": (t.get("message") or "").strip().splitlines()[-1:] or [""],
            }
        )
        rows[-1]["message"] = rows[-1]["message"][0]
    return rows


def write_results(experiment: Experiment, verbose: int = 1) -> dict:
    """trials.csv, best_hyperparameters.json, plots and summary.md from the search folder."""
    import csv
    import io

    from cnnkeras.tuning._plots import objective_plots

    rows = _load_trials(experiment)
    if not rows:
        raise UserError(f"no trials found in {experiment.out}")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _io.write_text(experiment.out / "trials.csv", buf.getvalue())
    done = [r for r in rows if r["status"] == "COMPLETED" and r[experiment.objective] is not None]
    sign = 1 if "acc" in experiment.objective else -1
    best = max(done, key=lambda r: sign * r[experiment.objective]) if done else None
    bookkeeping = {"trial_id", "status", experiment.objective, "epochs", "seconds", "params",
                   "rss_mb", "message"}  # fmt: skip
    hp_names = [c for c in columns if c not in bookkeeping]
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
    for name, png in objective_plots(rows, hp_names, experiment.objective).items():
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
        seed=experiment.seed,
        model_options={**experiment.model_options, **options},
    )
    if "dropout" in options:
        config.dropout = options.pop("dropout")
        config.model_options.pop("dropout", None)
    return train(config, verbose=verbose)


__all__ = ["ZooHyperModel", "make_tuner", "retrain_best", "run_search", "write_results"]
