"""Training with model.fit: a complete run folder, determinism, kill-and-resume, NaN stops."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from cnnkeras.errors import UserError
from cnnkeras.train import TrainConfig, resume, train
from cnnkeras.train._run import RunCheckpoint

QUICK = dict(dataset="digits", image_size=16, epochs=2, batch_size=64)


def history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_short_run_leaves_a_complete_run_folder(tmp_path):
    result = train(TrainConfig(**QUICK, out=str(tmp_path)), verbose=0)
    run = tmp_path / os.listdir(tmp_path)[0]
    assert result["run_dir"] == str(run) and run.name.startswith("lenet5-digits-")
    expected = {
        "config.json",
        "model.keras",
        "labels.txt",
        "history.csv",
        "training_curves.png",
        "logs",
        "metrics.json",
        "report.md",
        "report.html",
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "pr_curves.png",
        "misclassified.png",
    }
    assert expected <= set(os.listdir(run))
    assert not (run / "checkpoint").exists()
    assert not [p for p in os.listdir(run) if p.startswith(".")]  # no temporary files
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "done" and config["arch"] == "lenet5"
    assert {"tensorflow", "keras", "scikit-learn"} <= set(config["versions"])
    assert config["preprocessing"]["height"] == 16 and config["splits"]["test"] == 180
    assert (run / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    assert [int(r["epoch"]) for r in history(run)] == [0, 1]
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert model.input_shape == (None, 16, 16, 1) and model.output_shape == (None, 10)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_samples"] == 180 and metrics["accuracy"] == result["test_accuracy"]
    assert metrics["accuracy"] > 0.3  # two epochs of LeNet-5 learn something
    assert any((run / "logs").rglob("events.out.tfevents.*"))


def test_same_seed_same_result(tmp_path):
    a = train(TrainConfig(**QUICK, out=str(tmp_path / "a")), verbose=0)
    b = train(TrainConfig(**QUICK, out=str(tmp_path / "b")), verbose=0)
    ha = history(tmp_path / "a" / os.listdir(tmp_path / "a")[0])
    hb = history(tmp_path / "b" / os.listdir(tmp_path / "b")[0])
    assert ha == hb
    assert a["test_accuracy"] == b["test_accuracy"]


def test_resume_after_sigkill(tmp_path):
    """A real child process is killed mid-run; --resume finishes with every epoch once."""
    args = [
        sys.executable,
        "-m",
        "cnnkeras",
        "train",
        "--dataset",
        "digits",
        "--image-size",
        "16",
        "--epochs",
        "25",
        "--patience",
        "100",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline:
        runs = list(tmp_path.glob("lenet5-digits-*"))
        if runs and (runs[0] / "history.csv").is_file() and len(history(runs[0])) >= 3:
            break
        assert child.poll() is None, child.stderr.read().decode()
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    run = runs[0]
    done_before = len(history(run))
    assert done_before < 25, "the run finished before it could be killed"
    assert json.loads((run / "config.json").read_text())["status"] == "running"
    proc = subprocess.run(
        [sys.executable, "-m", "cnnkeras", "train", "--resume", str(run), "--quiet", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["epochs_run"] == 25
    assert [int(r["epoch"]) for r in history(run)] == list(range(25))
    assert json.loads((run / "config.json").read_text())["status"] == "done"
    keras.saving.load_model(run / "model.keras", safe_mode=True)
    # resuming a finished run changes nothing
    again = subprocess.run(
        [sys.executable, "-m", "cnnkeras", "train", "--resume", str(run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "complete" in again.stdout


def test_nan_loss_stops_and_keeps_nothing_of_that_epoch(tmp_path):
    callback = RunCheckpoint(tmp_path, best=0.9, best_epoch=3)
    callback.set_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    callback.on_epoch_end(4, {"loss": math.nan, "val_accuracy": 0.1})
    assert callback.model.stop_training and callback.nan_epoch == 4
    assert not list(tmp_path.iterdir())


def test_diverging_run_reports_nan(tmp_path):
    config = TrainConfig(
        **{**QUICK, "epochs": 3},
        optimizer="sgd",
        lr=1e30,
        out=str(tmp_path),
        model_options={"activation": "relu"},
    )
    with pytest.raises(UserError, match="lower --lr"):
        train(config, verbose=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_size": 8}, "below lenet5's minimum of 16"),
        ({"arch": "lenet6"}, "unknown model 'lenet6'"),
        ({"epochs": 0}, "--epochs must be >= 1"),
        ({"dataset": "folder:/does/not/exist"}, "does not exist"),
    ],
)
def test_user_errors(overrides, message, tmp_path):
    with pytest.raises(UserError, match=message):
        train(TrainConfig(**{**QUICK, **overrides, "out": str(tmp_path)}), verbose=0)


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        resume(tmp_path)


def test_evaluate_command_recreates_the_run_report(tmp_path, capsys):
    from cnnkeras.cli import main

    train(TrainConfig(**QUICK, out=str(tmp_path)), verbose=0)
    run = next(tmp_path.iterdir())
    out = tmp_path / "eval"
    assert main(["evaluate", str(run / "model.keras"), "--out", str(out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    trained = json.loads((run / "metrics.json").read_text())
    assert evaluated["confusion_matrix"] == trained["confusion_matrix"]  # the same test images
    assert np.isclose(evaluated["accuracy"], trained["accuracy"])
    assert (out / "report.html").is_file()
    assert main(["evaluate", str(run / "labels.txt")]) == 2


@pytest.mark.slow
def test_main_job_reaches_97_percent(tmp_path):
    """`cnnkeras train` with no options: LeNet-5 on mnist5k, >= 97% on unseen test images."""
    result = train(TrainConfig(out=str(tmp_path)), verbose=0)
    assert result["test_accuracy"] >= 0.97
    config = json.loads((tmp_path / os.listdir(tmp_path)[0] / "config.json").read_text())
    assert (config["arch"], config["dataset"]) == ("lenet5", "mnist5k")
