"""Keras Tuner searches: every tuner kind for real on digits, the files a search leaves,
resume after a real kill, failing trials (a dying process included), flat memory, a 2-worker
search, retrain-best."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner as kt
import psutil
import pytest
from helpers import run_cli

from cnnkeras.cli import main
from cnnkeras.errors import UserError
from cnnkeras.models import create_model, list_models, model_info
from cnnkeras.tuning import (
    SEARCH_SPACES,
    Experiment,
    ZooHyperModel,
    load_experiment,
    retrain_best,
    run_search,
)
from cnnkeras.tuning._experiment import TRAINING_HPS
from cnnkeras.tuning._processes import _prepare
from cnnkeras.tuning._tuner import EXTRA, PROJECT

TINY = dict(arch="lenet5", dataset="digits", image_size=16, epochs=1)
# trials in this test's process (no child to start: 10 s each here); the processes trials run
# in, and that a trial gives the same result in any of them, have tests of their own
HERE = {"max_memory_growth_mb": None}
TUNE = [sys.executable, "-m", "cnnkeras", "tune", "--arch", "lenet5", "--dataset", "digits"]
TUNE += ["--image-size", "16"]


def trials(folder) -> list[dict]:
    with open(Path(folder) / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("tuner", ["random", "hyperband", "bayesian"])
def test_each_tuner_kind_leaves_its_results(tuner, tmp_path):
    epochs = 2 if tuner == "hyperband" else 1
    e = Experiment(**{**TINY, "epochs": epochs}, tuner=tuner, max_trials=3, directory=str(tmp_path))
    result = run_search(e, **HERE, verbose=0)
    rows = trials(tmp_path)
    assert len(rows) == result["trials"] >= 2
    assert list(rows[0])[:6] == ["trial_id", "status", "kernel_size", "filters", "dropout", "lr"]
    assert {"val_accuracy", "epochs", "seconds", "params"} <= set(rows[0])
    assert all(r["status"] == "COMPLETED" for r in rows)
    assert len({r["trial_id"] for r in rows}) == len(rows)
    best = json.loads((tmp_path / "best_hyperparameters.json").read_text())
    assert best["val_accuracy"] == max(float(r["val_accuracy"]) for r in rows)
    for name in ("objective_per_trial.png", "objective_vs_hyperparameters.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert "best val_accuracy" in (tmp_path / "summary.md").read_text()
    # the search was the one asked for, not a fallback: each oracle's own state
    oracle = json.loads((tmp_path / PROJECT / "oracle.json").read_text())
    own = {"hyperband": "brackets", "bayesian": "num_initial_points"}
    assert {k for k in own.values() if k in oracle} == ({own[tuner]} if tuner in own else set())
    for r in rows:  # the recorded size is that of the zoo model with those options
        model = create_model(
            "lenet5",
            input_shape=(16, 16, 1),
            num_classes=10,
            kernel_size=int(r["kernel_size"]),
            filters=int(r["filters"]),
        )
        assert int(r["params"]) == model.count_params()


def test_the_recipe_options_are_searchable(tmp_path):
    """Schedule, MixUp strength, weight decay, label smoothing and EMA in a search space:
    each trial records them and trains with them (the trial's config, plan and compiled
    optimizer and loss are built by the same ``Experiment.train_config``)."""
    from cnnkeras.data import Preprocessing
    from cnnkeras.train import compile_for_training, plan_training

    space = {
        "kernel_size": [3],
        "batch_norm": [True],  # a boolean stays one (Keras Tuner's Choice would make it 1)
        "schedule": ["onecycle"],
        "mixup": [0.4],
        "weight_decay": [0.05],
        "label_smoothing": [0.1],
        "ema": [0.9],
        "lr": [3e-3],
    }
    e = Experiment(**TINY, max_trials=1, directory=str(tmp_path), search_space=space)
    run_search(e, **HERE, verbose=0)
    (row,) = trials(tmp_path)
    assert row["status"] == "COMPLETED" and row["schedule"] == "onecycle"
    assert row["batch_norm"] == "True"
    assert [float(row[k]) for k in ("mixup", "weight_decay", "label_smoothing", "ema")] == [
        0.4,
        0.05,
        0.1,
        0.9,
    ]
    config = e.train_config({k: v[0] for k, v in space.items()}, epochs=3)
    plan = plan_training(config, 640, 64, Preprocessing(16, 16, 1), 1024)
    assert plan.schedule == "onecycle" and dict(plan.mix) == {"mixup": 0.4}
    model = create_model("lenet5", input_shape=(16, 16, 1), num_classes=10)
    compile_for_training(model, config, plan)
    assert model.optimizer.weight_decay == pytest.approx(0.05) and model.optimizer.use_ema
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert config.model_options == {}  # builder options go to the build, not the training


@pytest.mark.parametrize("name", list_models())
def test_every_family_has_a_default_search_space(name):
    info = model_info(name)
    space = SEARCH_SPACES[info.family]
    assert "dropout" in space and set(space) - set(TRAINING_HPS) <= set(info.options)
    for option in ("kernel_size", "filters", "alpha"):
        assert (option in space) == (option in info.options), option


def test_hypermodel_calls_the_builder(tmp_path):
    e = Experiment(**TINY, directory=str(tmp_path))
    data, prep = _prepare(e)
    hp = kt.HyperParameters()
    hp.Fixed("kernel_size", 3)
    hp.Fixed("filters", 12)
    model = ZooHyperModel(e, data, prep).build(hp)
    same = create_model(
        "lenet5", input_shape=(16, 16, 1), num_classes=10, kernel_size=3, filters=12
    )
    assert [layer.name for layer in model.layers] == [layer.name for layer in same.layers]
    assert model.count_params() == same.count_params()


def test_training_options_are_searched_and_reach_the_trial(tmp_path):
    # weight decay and label smoothing are training options: sampled, not passed to the builder
    space = {"filters": [6], "weight_decay": [0.02], "label_smoothing": [0.1]}
    e = Experiment(**TINY, directory=str(tmp_path), search_space=space, class_weight="balanced")
    data, prep = _prepare(e)
    hypermodel = ZooHyperModel(e, data, prep)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    assert hp.values == {"filters": 6, "weight_decay": 0.02, "label_smoothing": 0.1}
    hypermodel.fit(hp, model, epochs=1)
    assert model.optimizer.weight_decay == pytest.approx(0.02)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)


def test_resume_after_sigkill(tmp_path):
    args = [*TUNE, "--max-trials", "6", "--epochs", "3", "--dir", str(tmp_path)]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, finished = time.time() + 300, {}
    while time.time() < deadline:
        finished = {}
        for path in tmp_path.glob("search/trial_*/trial.json"):
            try:
                t = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                continue
            if t["status"] == "COMPLETED":
                finished[t["trial_id"]] = t["score"]
        if len(finished) >= 2:
            break
        assert child.poll() is None, child.stderr.read().decode()
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 2 <= len(finished) < 6, "the search finished before it could be killed"
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rows = trials(tmp_path)
    assert len(rows) == 6 and len({r["trial_id"] for r in rows}) == 6
    assert all(r["status"] == "COMPLETED" for r in rows)
    for trial_id, score in finished.items():  # kept, not rerun
        row = next(r for r in rows if r["trial_id"] == trial_id)
        assert float(row["val_accuracy"]) == pytest.approx(score)


def test_failing_trials_are_recorded_with_their_reason(tmp_path):
    # two configurations: C1 with 6 filters trains, with 0 filters the builder refuses
    e = Experiment(
        **TINY,
        max_trials=6,
        directory=str(tmp_path),
        search_space={"filters": [6, 0], "kernel_size": [5], "dropout": [0.0]},
    )
    result = run_search(e, verbose=0)
    rows = {r["filters"]: r for r in trials(tmp_path)}
    assert set(rows) == {"6", "0"} and result["failed"] == 1
    assert rows["6"]["status"] == "COMPLETED"
    assert rows["0"]["status"] == "FAILED"
    assert "filters and kernel_size must be positive" in rows["0"]["message"]


def test_nan_trials_fail_and_the_search_stops_after_three_in_a_row(tmp_path):
    e = Experiment(
        **TINY,
        max_trials=10,
        directory=str(tmp_path),
        search_space={"lr": [1e30, 2e30, 3e30, 4e30, 5e30], "optimizer": ["sgd"], "dropout": [0.0]},
        model_options={"activation": "relu"},
        augment=(),  # the batches whose NaN was checked (an augmented one may end finite)
    )
    with pytest.raises(UserError, match="3 trials in a row failed"):
        run_search(e, **HERE, verbose=0)
    rows = trials(tmp_path)
    assert len(rows) == 3 and all(r["status"] == "FAILED" for r in rows)
    assert all("NaN" in r["message"] for r in rows)


def _trial_records(folder) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("search/trial_*/" + EXTRA))]


@pytest.mark.slow
def test_memory_stays_flat_across_12_trials(tmp_path):
    # In one process TensorFlow keeps ~4 MiB a trial (measured: 826 -> 874 MiB in 12 trials;
    # 11 MiB when each trial traced its train step twice); a process that grows by 20 MiB
    # hands over to a fresh one (after about 5 trials).
    e = Experiment(**TINY, max_trials=12, directory=str(tmp_path))
    run_search(e, max_memory_growth_mb=20, verbose=0)
    rows = trials(tmp_path)
    assert len(rows) == 12 and all(r["status"] == "COMPLETED" for r in rows)
    rss = [float(r["rss_mb"]) for r in rows]
    assert max(rss) <= rss[0] + 20 + 30, rss
    pids = [r["pid"] for r in _trial_records(tmp_path)]
    assert len(set(pids)) >= 2 and pids == sorted(pids, key=pids.index)  # consecutive runs


def test_a_trial_gives_the_same_result_in_any_process(tmp_path):
    fresh = Experiment(**TINY, max_trials=2, directory=str(tmp_path / "fresh"))
    run_search(fresh, max_memory_growth_mb=0, verbose=0)  # a new process for every trial
    assert len({r["pid"] for r in _trial_records(tmp_path / "fresh")}) == 2
    here = Experiment(**TINY, max_trials=2, directory=str(tmp_path / "here"))
    run_search(here, max_memory_growth_mb=None, verbose=0)  # all in this process
    assert {r["pid"] for r in _trial_records(tmp_path / "here")} == {os.getpid()}
    columns = ("trial_id", "kernel_size", "filters", "dropout", "lr", "val_accuracy", "params")
    assert [tuple(r[c] for c in columns) for r in trials(tmp_path / "fresh")] == [
        tuple(r[c] for c in columns) for r in trials(tmp_path / "here")
    ]


def test_a_trial_whose_process_keeps_dying_fails(tmp_path):
    # what the kernel's out-of-memory killer does: SIGKILL the process running the trial
    args = [*TUNE, "--max-trials", "2", "--epochs", "30", "--dir", str(tmp_path)]
    parent = subprocess.Popen([*args, "--max-memory-growth", "0"], stdout=subprocess.DEVNULL)
    record = tmp_path / "search" / "trial_0" / EXTRA
    for started in (1, 2):
        deadline = time.time() + 120
        while not (record.is_file() and json.loads(record.read_text())["started"] == started):
            assert time.time() < deadline and parent.poll() is None
            time.sleep(0.05)
        deadline = time.time() + 60  # the trial's record is written: its process is in it
        while len(children := psutil.Process(parent.pid).children()) != 1:
            assert time.time() < deadline, children
            time.sleep(0.05)
        children[0].send_signal(signal.SIGKILL)
    assert parent.wait(timeout=300) == 0
    rows = {r["trial_id"]: r for r in trials(tmp_path)}
    assert rows["0"]["status"] == "FAILED" and "ended 2 times" in rows["0"]["message"]
    assert rows["1"]["status"] == "COMPLETED"


@pytest.mark.slow
def test_two_worker_search_runs_every_trial_once(tmp_path):
    e = Experiment(**TINY, max_trials=3, directory=str(tmp_path / "dist"))
    result = run_search(e, workers=2, max_memory_growth_mb=0, verbose=0)  # workers hand over
    assert len({r["pid"] for r in _trial_records(tmp_path / "dist")}) == 3
    rows = trials(tmp_path / "dist")
    assert result["completed"] == len(rows) == 3
    assert sorted(r["trial_id"] for r in rows) == ["0", "1", "2"]
    single = Experiment(**TINY, max_trials=3, directory=str(tmp_path / "single"))
    run_search(single, **HERE, verbose=0)
    alone = trials(tmp_path / "single")
    assert list(rows[0]) == list(alone[0])  # the same format
    same = ("kernel_size", "filters", "dropout", "lr", "val_accuracy")  # and the same results
    assert [tuple(r[k] for k in same) for r in rows] == [tuple(r[k] for k in same) for r in alone]


def test_retrain_best_against_the_defaults(tmp_path, monkeypatch):
    """The best configuration and train's defaults, trained for the same seeds into the
    search folder, their test accuracies and the gain in summary.md; a second call trains
    nothing again."""
    monkeypatch.chdir(tmp_path)
    e = Experiment(**TINY, max_trials=2, directory=str(tmp_path / "search"))
    run_search(e, **HERE, verbose=0)
    result = retrain_best(e, epochs=1, seeds=2, verbose=0)
    best = json.loads((tmp_path / "search" / "best_hyperparameters.json").read_text())
    runs = sorted(p.name for p in (tmp_path / "search" / "retrained").iterdir())
    assert runs == ["best-seed42", "best-seed43", "defaults-seed42", "defaults-seed43"]
    config = json.loads((tmp_path / "search/retrained/best-seed43/config.json").read_text())
    assert config["model_options"]["kernel_size"] == best["kernel_size"] and config["seed"] == 43
    assert config["dropout"] == best["dropout"] and config["lr"] == best["lr"]
    defaults = json.loads((tmp_path / "search/retrained/defaults-seed42/config.json").read_text())
    assert defaults["lr"] == 1e-3 and defaults["model_options"] == {}
    assert defaults["dropout"] is None
    values = [r["test_accuracy"] for r in result["runs"]["best"]]
    assert result["best"]["values"] == values and len(values) == 2
    assert result["gain"] == pytest.approx(result["best"]["mean"] - result["defaults"]["mean"])
    summary = (tmp_path / "search" / "summary.md").read_text()
    assert f"gain of the search: {result['gain']:+.4f}" in summary
    stamp = (tmp_path / "search/retrained/best-seed42/model.keras").stat().st_mtime_ns
    assert retrain_best(e, epochs=1, seeds=2, verbose=0)["gain"] == result["gain"]
    assert (tmp_path / "search/retrained/best-seed42/model.keras").stat().st_mtime_ns == stamp

    # tune --retrain-best --no-baseline on the finished search: the best runs only, no gain
    args = ["tune", "--arch", "lenet5", "--dataset", "digits", "--image-size", "16"]
    args += ["--epochs", "1", "--max-trials", "2", "--dir", str(tmp_path / "search")]
    assert main([*args, "--retrain-best", "--seeds", "2", "--no-baseline", "--quiet"]) == 0
    retrained = json.loads((tmp_path / "search" / "retrained.json").read_text())
    assert "defaults" not in retrained and "gain" not in retrained
    assert retrained["best"]["values"] == values
    assert "gain of the search" not in (tmp_path / "search" / "summary.md").read_text()
    assert (tmp_path / "search/retrained/best-seed42/model.keras").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.glob("tuning/*.toml")))
def test_shipped_experiments_are_valid(path):
    e = load_experiment(path)
    info = model_info(e.arch)
    assert set(e.space(info.family)) - set(TRAINING_HPS) <= set(info.options)
    assert e.name == path.stem


def test_tune_user_errors(tmp_path, capsys):
    for args, message in (
        (["tune", str(tmp_path / "nope.toml")], "does not exist"),
        (["tune", "--tuner", "grid"], "invalid choice"),
        (["tune", "--max-memory-growth", "-1"], "must be >= 0"),
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    proc = run_cli("tune", "--dataset", "nope", "--dir", str(tmp_path))  # raised in the child
    assert proc.returncode == 2 and "unknown dataset" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_the_objective_says_which_way_is_better():
    # direction comes from what the metric is, not from its name: val_loss is minimised and
    # a metric trials do not record is refused before any trial runs
    assert Experiment(objective="val_loss").direction == "min"
    assert Experiment(objective="val_accuracy").maximize
    with pytest.raises(UserError, match="`objective` must be one of val_accuracy"):
        Experiment(objective="val_auc")
