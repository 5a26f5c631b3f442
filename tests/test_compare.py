"""cnnkeras compare: every file from real runs, the Pareto front, failures recorded, a kill
and a rerun that trains only what was missing, and training budgets."""

import csv
import json
import signal
import subprocess
import time

import pytest
from helpers import CLI, run_cli

from cnnkeras._files import CONFIG_FILE
from cnnkeras.compare import (
    COLUMNS,
    SETTINGS_FILE,
    _lecture_notes,
    compare,
    pareto_front,
    summarise,
)


def test_pareto_front_of_a_hand_made_table():
    costs = [1, 2, 3, 4, 4, 5]
    scores = [0.50, 0.70, 0.60, 0.90, 0.85, 0.90]
    # 3 is beaten by 2 (cheaper, better); the second 4 by the first; 5 by 4 (cheaper, equal)
    assert pareto_front(costs, scores) == [True, True, False, True, False, False]
    assert pareto_front([1, 1], [0.5, 0.5]) == [True, True]  # a tie: neither beats the other


def test_summary_marks_each_front_and_averages_the_seeds():
    def row(arch, seed, accuracy, macs, int8_ms):
        base = dict.fromkeys(COLUMNS)
        measures = dict.fromkeys(("train_seconds", "keras_ms", "int8_accuracy", "int8_kib"), 1.0)
        return {
            **base,
            **measures,
            "arch": arch,
            "seed": seed,
            "status": "ok",
            "reason": "",
            "params": 10,
            "macs": macs,
            "epochs": 3,
            "test_accuracy": accuracy,
            "test_macro_f1": accuracy,
            "int8_ms": int8_ms,
        }

    rows = [
        row("small", 42, 0.90, 1e6, 0.5),
        row("small", 43, 0.92, 1e6, 0.5),
        row("big", 42, 0.97, 9e6, 0.4),  # more MACs, yet faster as int8
        row("worse", 42, 0.80, 2e6, 0.6),
        {**dict.fromkeys(COLUMNS), "arch": "tiny", "seed": 42, "status": "failed", "reason": "x"},
    ]
    table = {t["arch"]: t for t in summarise(rows)}
    assert abs(table["small"]["test_accuracy"] - 0.91) < 1e-9
    assert table["small"]["seeds"] == 2  # the sample standard deviation of 0.90 and 0.92
    assert table["small"]["test_accuracy_std"] == pytest.approx(0.02 / 2**0.5)
    assert table["big"]["seeds"] == 1 and table["big"]["test_accuracy_std"] == 0.0
    assert table["small"]["front_macs"] and table["big"]["front_macs"]
    assert not table["worse"]["front_macs"] and not table["worse"]["front_int8"]
    assert table["big"]["front_int8"] and not table["small"]["front_int8"]
    assert table["tiny"]["status"] == "failed" and "front_macs" not in table["tiny"]


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_the_lecture_alexnet_googlenet_figure_is_set_beside_the_zoo_s():
    (note,) = _lecture_notes({"alexnet", "googlenet", "lenet5"})
    assert "62.4M / 7.0M = 8.9x" in note and "12x" in note
    assert _lecture_notes({"alexnet", "lenet5"}) == []


def test_every_file_a_failure_recorded_and_a_kill_retrains_only_the_rest(tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "--dataset", "digits", "--archs", "lenet5,alexnet,mobilenet_v1"]
    args += ["--image-size", "32", "--epochs", "1", "--set", "mobilenet_v1.alpha=0.25"]
    args += ["--out", str(out)]
    child = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (
        (out / "comparison.csv").is_file() and _rows(out / "comparison.csv")
    ):
        assert child.poll() is None, child.stderr.read().decode()
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    (first, *_) = _rows(out / "comparison.csv")
    assert first["arch"] == "lenet5" and first["status"] == "ok"
    lenet_model = out / "runs" / "lenet5-seed42" / "model.keras"
    stamp = lenet_model.stat().st_mtime_ns

    proc = run_cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert lenet_model.stat().st_mtime_ns == stamp  # not trained again
    rows = {r["arch"]: r for r in _rows(out / "comparison.csv")}
    assert list(rows) == ["lenet5", "alexnet", "mobilenet_v1"]
    assert rows["lenet5"] == first
    assert rows["alexnet"]["status"] == "failed"
    assert "the minimum is 67x67" in rows["alexnet"]["reason"]
    mobile = rows["mobilenet_v1"]
    assert mobile["status"] == "ok" and mobile["epochs"] == "1"
    for key in ("params", "macs", "test_accuracy", "test_macro_f1", "keras_ms", "int8_ms"):
        assert float(mobile[key]) > 0, key
    assert float(mobile["int8_kib"]) > 0
    # the accuracies are those of the files: evaluate on the int8 .tflite and the .keras model
    from cnnkeras.evaluate import evaluate_model

    int8 = evaluate_model(out / "tflite" / "mobilenet_v1-seed42" / "model_int8.tflite")
    assert float(mobile["int8_accuracy"]) == pytest.approx(int8["accuracy"], abs=1e-9)
    keras_run = evaluate_model(out / "runs" / "mobilenet_v1-seed42" / "model.keras")
    assert float(mobile["test_accuracy"]) == pytest.approx(keras_run["accuracy"], abs=1e-9)
    # alpha 0.25 reached the builder: fewer parameters than the full-width model's 3.2M
    assert int(mobile["params"]) < 1_000_000
    for name in ("comparison.md", "comparison.html", "accuracy_vs_macs.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "accuracy_vs_int8_latency.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "tflite" / "mobilenet_v1-seed42" / "model_int8.tflite").is_file()
    page = (out / "comparison.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and 'src="http' not in page
    md = (out / "comparison.md").read_text()
    assert all(f"| {a}" in md or f"| **{a}**" in md for a in rows)
    summary = {t["arch"]: t for t in result["summary"]}
    assert summary["alexnet"]["status"] == "failed"
    assert abs(summary["lenet5"]["test_accuracy"] - float(first["test_accuracy"])) < 1e-9


def test_a_budget_sets_the_epochs_and_skips_what_cannot_fit(tmp_path):
    result = compare("digits", ["lenet5"], budget_minutes=0.1, out=tmp_path / "a", verbose=0)
    (row,) = result["rows"]
    assert row["status"] == "ok" and row["epochs"] >= 1
    record = json.loads((tmp_path / "a" / "runs" / "lenet5-seed42" / CONFIG_FILE).read_text())
    assert record["epochs"] == record["plan"]["epochs"] >= row["epochs"]  # the plan
    assert record["budget_seconds"] == 6.0  # and the clock stops the run at the budget

    result = compare("digits", ["lenet5"], budget_minutes=1e-4, out=tmp_path / "b", verbose=0)
    (row,) = result["rows"]
    assert row["status"] == "skipped" and "over the budget" in row["reason"]
    assert not (tmp_path / "b" / "runs").exists()


def test_a_folder_keeps_its_settings(tmp_path):
    compare("digits", ["alexnet"], image_size=32, epochs=1, out=tmp_path, verbose=0)
    proc = run_cli(
        "compare",
        "--dataset",
        "digits",
        "--archs",
        "alexnet",
        "--epochs",
        "2",
        "--image-size",
        "32",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 2
    assert "holds a comparison with another epochs; pass another --out" in proc.stderr


def test_all_and_seeds_reach_the_plan(tmp_path):
    """--all plans every registered architecture, --seeds N runs each N times with seeds 42..;
    AlexNet, first in the registry, fails fast at 32x32 (its minimum is 67x67), so the first
    two rows come in seconds and the run is stopped there."""
    from cnnkeras.models import list_models

    out = tmp_path / "cmp"
    args = ["compare", "--dataset", "digits", "--all", "--seeds", "2", "--image-size", "32"]
    child = subprocess.Popen(
        [*CLI, *args, "--epochs", "1", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (
        (out / "comparison.csv").is_file() and len(_rows(out / "comparison.csv")) >= 2
    ):
        assert child.poll() is None, "compare ended before its second row"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    stdout = child.communicate()[0]
    rows = _rows(out / "comparison.csv")
    assert [(r["arch"], r["seed"], r["status"]) for r in rows[:2]] == [
        ("alexnet", "42", "failed"),
        ("alexnet", "43", "failed"),
    ]
    n = 2 * len(list_models())
    assert stdout.splitlines()[:1] == [f"[1/{n}] {list_models()[0]}, seed 42"]
    assert json.loads((out / SETTINGS_FILE).read_text())["seeds"] == [42, 43]


def _budget_stops(monkeypatch, seconds: float, first_tail: float, script: list) -> list[str]:
    """The events of ``script`` (callback, clock) a TimeBudget saw before it stopped."""
    import keras

    from cnnkeras.train import _callbacks

    now = [0.0]
    monkeypatch.setattr(_callbacks.time, "perf_counter", lambda: now[0])
    budget = _callbacks.TimeBudget(seconds, first_tail)
    budget.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    budget.model.stop_training = False
    budget.on_train_begin()
    seen = []
    for event, now[0] in script:
        getattr(budget, event)(0)
        seen.append(f"{event}@{now[0]:g}")
        if budget.model.stop_training:
            return seen
    return seen


def test_the_time_budget_stops_where_one_more_step_and_a_validation_would_overrun(monkeypatch):
    # epoch 0: the first call traces (3 s, no step sample), then steps of 0.5 s; its
    # validation takes 1 s; epoch 1: steps of 0.5 s
    epoch0 = [("on_epoch_begin", 0.0)]
    epoch0 += [("on_train_batch_end", t) for t in (3.0, 3.5, 4.0)] + [("on_epoch_end", 5.0)]
    epoch1 = [("on_epoch_begin", 5.0)] + [("on_train_batch_end", 5.5 + i / 2) for i in range(9)]
    # within the epoch: at 8.5 another step and the validation end at 10, at 9 at 10.5
    assert _budget_stops(monkeypatch, 10.0, 1.0, epoch0 + epoch1)[-2:] == [
        "on_train_batch_end@8.5",
        "on_train_batch_end@9",
    ]
    # at an epoch's end: a step of the next and its validation would end at 6.5, past 6
    assert _budget_stops(monkeypatch, 6.0, 1.0, epoch0 + epoch1)[-1] == "on_epoch_end@5"
    # before the first validation, the probe's (2 s) is reserved: 4 + 0.5 + 2 is past 6
    assert _budget_stops(monkeypatch, 6.0, 2.0, epoch0 + epoch1)[-1] == "on_train_batch_end@4"


def test_a_budget_stops_keras_inside_an_epoch_and_still_validates():
    import keras
    import numpy as np

    from cnnkeras.train import _callbacks

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.zeros((40, 2), "float32"), np.zeros((40, 1), "float32")
    seen: list[int] = []
    batches = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    history = model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        validation_data=(x, y),
        callbacks=[_callbacks.TimeBudget(1e-9), batches],
        verbose=0,
    )
    assert seen == [0]  # one of ten steps, then the clock stopped it
    assert len(history.history["val_loss"]) == 1


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_the_clock_s_schedule_is_the_planned_one(schedule):
    """What TimeBudget sets at a share of the run is what the Keras schedule of a fixed run
    gives at the same share of its steps: one curve, measured in steps or by the clock."""
    from cnnkeras.train._callbacks import learning_rate, rate_at
    from cnnkeras.train._plan import TrainingPlan

    plan = TrainingPlan(
        batch_size=16, steps_per_epoch=10, steps_per_execution=1, val_batch_size=16,
        val_steps=1, cache="none", schedule=schedule, warmup_epochs=3, epochs=20,
    )  # fmt: skip
    keras_schedule = learning_rate(0.01, plan)
    for step in (0, 7, 30, 31, 99, 150, 199, 200):
        expected = float(keras_schedule(step))
        assert rate_at(0.01, plan, step / plan.total_steps) == pytest.approx(
            expected, rel=1e-5, abs=1e-8
        )


def test_a_run_stopped_by_the_clock_ends_its_schedule_there(tmp_path):
    """Planned for far more epochs than fit (as when a budget's probe foresees epochs too
    short), a budget run still reaches a high rate and ends low where the clock stops it.
    The rate is set after each graph call (3 an epoch here), so the last one is set a call
    before the stop: measured 0.04-0.13 of the peak with one call an epoch. A schedule fixed
    over the 20 planned epochs stops at 0.97 of its peak after 4 of them."""
    from cnnkeras.train import TrainConfig, train
    from cnnkeras.train._history import read_history

    config = TrainConfig(dataset="digits", epochs=20, lr=3e-3, budget_seconds=15)
    train(config, run_dir=tmp_path / "run", verbose=0)
    record = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert record["plan"]["steps_per_epoch"] == 3 * record["plan"]["steps_per_execution"]
    rates = [row["lr"] for row in read_history(tmp_path / "run" / "history.csv")]
    assert 2 <= len(rates) < 15, rates  # stopped by the clock, far from the plan
    assert max(rates) >= 0.5 * 3e-3 and rates[-1] <= 0.25 * 3e-3, rates
