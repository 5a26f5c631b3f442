"""Training with model.fit: a complete run folder, determinism, kill-and-resume, NaN stops."""

import itertools
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import CLI, history, kill_after_epochs, killed_and_resumed, run_callback, run_cli

from cnnkeras.cli import main
from cnnkeras.errors import UserError
from cnnkeras.train import TrainConfig, resume, train
from cnnkeras.train._callbacks import RunCheckpoint

QUICK = dict(dataset="digits", image_size=16, epochs=2, batch_size=64)


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
        "train_batch.png",
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


def test_a_run_killed_and_resumed_is_the_run_it_would_have_been(tmp_path):
    """SIGKILL at epoch 2 or 3 of 6 (augmentation, MixUp, weight average); --resume ends
    with the uninterrupted run's history (every value) and weights, bit for bit."""
    args = [
        "train",
        *("--dataset", "digits", "--image-size", "16", "--epochs", "6", "--patience", "100"),
        *("--augment", "rotation,mixup", "--ema", "0.99", "--quiet"),
    ]
    run, reference, result = killed_and_resumed(args, tmp_path, rows=2, epochs=6)
    assert result["epochs_run"] == 6
    assert (run / "history.csv").read_bytes() == (reference / "history.csv").read_bytes()
    a = keras.saving.load_model(run / "model.keras", safe_mode=True).get_weights()
    b = keras.saving.load_model(reference / "model.keras", safe_mode=True).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert json.loads((run / "config.json").read_text())["status"] == "done"
    # resuming a finished run changes nothing
    again = run_cli("train", "--resume", str(run))
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
    with pytest.raises(UserError, match="lower `lr`"):
        train(config, verbose=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image_size": 8}, "below lenet5's minimum of 16"),
        ({"arch": "lenet6"}, "unknown model 'lenet6'"),
        ({"epochs": 0}, "`epochs` must be auto or >= 1"),  # the parameter, not the flag
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
def test_main_job_reaches_96_percent(tmp_path):
    """`cnnkeras train` with no options: LeNet-5 on mnist5k, >= 96% on unseen test images.
    With the phone's resize (the default since it made the test accuracy the app's) seeds 42,
    43, 44 gave 0.962, 0.980, 0.978; with the earlier area-averaging one 0.974, 0.974, 0.982
    (BENCHMARKS.md). Since each epoch's draws are a function of (seed, epoch, step), the
    default seed gives 0.982; the bar stays where the lowest seed was."""
    result = train(TrainConfig(out=str(tmp_path)), verbose=0)
    assert result["test_accuracy"] >= 0.96
    assert "learned_nothing" not in result  # a run that learns is not warned about
    config = json.loads((tmp_path / os.listdir(tmp_path)[0] / "config.json").read_text())
    assert (config["arch"], config["dataset"]) == ("lenet5", "mnist5k")


def test_learned_nothing_is_judged_against_guessing_and_its_noise():
    """The rule by hand: guessing is the larger of chance and the largest class's share of the
    validation split; noise is two standard errors of a guesser on that many images."""
    from cnnkeras.train._plan import TrainingPlan
    from cnnkeras.train._verdict import learned_nothing

    plan = TrainingPlan(16, 10, 1, 16, 2, "memory", "cosine", 0, 3)  # 10 steps an epoch

    def rows(best, losses=(1.0, 0.8, 0.7)):
        return [
            {"loss": x, "val_accuracy": a} for x, a in zip(losses, (0.2, best, 0.3), strict=True)
        ]

    even = np.repeat([0, 1, 2], 10)  # guessing 1/3, noise 2 * sqrt(2/9 / 30): up to 0.5055
    assert learned_nothing(rows(0.55), even, 3, plan) is None
    warned = learned_nothing(rows(0.50), even, 3, plan)
    assert warned["guessing"] == pytest.approx(1 / 3)
    assert warned["margin"] == pytest.approx(2 * math.sqrt(2 / 9 / 30))
    assert warned["causes"] == ["30 optimizer steps, where `--epochs auto` plans 1,500"]
    skewed = np.repeat([0, 1, 2], [24, 3, 3])  # always class 0 gets 0.8, noise 0.146
    assert learned_nothing(rows(0.9), skewed, 3, plan)["guessing"] == pytest.approx(0.8)
    assert learned_nothing(rows(0.95), skewed, 3, plan) is None
    flat = learned_nothing(rows(0.4, (1.0, 0.95, 0.91)), even, 3, plan)
    assert "a training loss that never fell (1.000 -> 0.910)" in flat["causes"]


def test_a_run_that_learned_nothing_says_so(tmp_path, capsys):
    """A learning rate too small to move the weights: the run, its --json and its report say
    it learned nothing, with the causes measured from the run."""
    argv = ["train", "--dataset", "digits", "--image-size", "16", "--epochs", "2"]
    assert main([*argv, "--lr", "1e-9", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    warned = result["learned_nothing"]
    assert warned["best_val_accuracy"] <= warned["guessing"] + warned["margin"]
    assert any("never fell" in c for c in warned["causes"]), warned
    assert any("optimizer steps" in c for c in warned["causes"]), warned
    (run,) = tmp_path.iterdir()
    assert "learned nothing that validation can tell" in (run / "report.md").read_text()


# ---------------------------------------------------------------- a user's own images


def test_auto_batch_size_and_steps_per_execution_leave_no_short_chunk():
    from cnnkeras.train._plan import auto_batch_size, execution_plan

    assert [auto_batch_size(n)[0] for n in (215, 1437, 2000, 4000)] == [16, 16, 32, 64]
    for steps, n_val in [(4, 27), (14, 27), (40, 500), (63, 500), (61, 100), (90, 180), (1, 3)]:
        spe, val_batch, val_steps = execution_plan(steps, n_val)
        assert steps % spe == 0 and val_steps % spe == 0 and spe <= 32
        assert math.ceil(n_val / val_batch) == val_steps and val_batch <= 64
    assert [execution_plan(s, 500)[0] for s in (4, 40, 63, 64)] == [4, 20, 21, 32]
    assert execution_plan(64, 0) == (32, 0, 0)  # no validation: nothing else to divide


def test_precise_batch_norm_sets_population_statistics(rng):
    import tensorflow as tf

    from cnnkeras.train._callbacks import PreciseBatchNorm

    inputs = keras.Input((6, 6, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(conv)
    x = keras.layers.BatchNormalization(name="frozen")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.get_layer("frozen").trainable = False
    images = rng.normal(3.0, 2.0, (64, 6, 6, 3)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(64))).batch(16)
    callback = PreciseBatchNorm(ds)
    callback.set_model(model)
    callback.recompute()
    features = keras.Model(inputs, conv)(images).numpy().reshape(4, 16 * 36, 4)  # per batch
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), features.mean(axis=(0, 1)), rtol=1e-4)
    expected_var = features.var(axis=1).mean(axis=0)  # the mean of the batch variances
    np.testing.assert_allclose(bn.moving_variance.numpy(), expected_var, rtol=1e-4)
    frozen = model.get_layer("frozen")  # inference mode: keeps its statistics
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(4))
    # batches of 16, 16 and 8: the function is traced once, for any batch size
    uneven = PreciseBatchNorm(ds.unbatch().take(40).batch(16))
    uneven.set_model(model)
    uneven.recompute()
    assert uneven._moments.experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_batch_norm_model_learns_a_small_folder_of_real_photos(real_photos, tmp_path):
    """270 real colour JPEGs, 14 steps an epoch: MobileNet v2 used to predict one class for
    everything (test accuracy 0.18, chance 0.17) because its batch-norm statistics were still
    their initial values; one file breaks only when decoded, and is skipped and counted.
    Eight epochs of this are noisy (28 test images, one is 3.6 points): over seeds 42-45 the
    code before exact resume reached 0.50, 0.39, 0.43, 0.39, the code after 0.29, 0.57, 0.43,
    0.46 and, on oneDNN's kernels, 0.61, 0.36, 0.54, 0.50 (seed 43 went from 0.57 to 0.36;
    each of the four predicted all 6 classes). So the bar is what the failure cannot reach
    and all 12 runs did: 8 of 28 right (one class for everything gets at most 5), and at
    least 4 classes predicted, at seed 43."""
    config = TrainConfig(
        arch="mobilenet_v2",
        model_options={"alpha": 0.35},
        dataset=f"folder:{real_photos}",
        image_size=32,
        epochs=8,
        seed=43,
        out=str(tmp_path),
    )
    result = train(config, verbose=0)
    run = tmp_path / os.listdir(tmp_path)[0]
    record = json.loads((run / "config.json").read_text())
    plan = record["plan"]
    assert (plan["batch_size"], plan["steps_per_epoch"]) == (16, 14)
    assert 14 % plan["steps_per_execution"] == 0 and "flip" in plan["augment"]
    assert result["test_accuracy"] >= 8 / 28, result
    rows = json.loads((run / "metrics.json").read_text())["confusion_matrix"]
    assert sum(1 for column in zip(*rows, strict=True) if sum(column)) >= 4, rows
    assert record["decode_failures"] == 1
    assert (run / "skipped.txt").read_text().split() == [str(real_photos / "sky" / "cut.jpg")]
    assert plan["cache"] == "memory"  # 11 MiB decoded: the whole split is cached, read once
    assert "learned_nothing" not in result  # a run that learns is not warned about
    checked = json.loads((run / "data_check.json").read_text())  # the data, looked at first
    assert checked["unreadable"] == [str(real_photos / "sky" / "cut.jpg")]
    assert "<li>data check: 271 images, 6 classes" in (run / "report.html").read_text()


@pytest.mark.slow
def test_a_folder_run_keeps_its_split_through_resume_and_evaluate(real_photos, tmp_path):
    import shutil

    from cnnkeras.cli import main

    folder = tmp_path / "photos"
    shutil.copytree(real_photos, folder)
    out = tmp_path / "runs"
    args = [
        *CLI,
        "train",
        "--dataset",
        f"folder:{folder}",
        "--image-size",
        "32",
        "--epochs",
        "30",
        "--out",
        str(out),
        "--quiet",
    ]
    run = kill_after_epochs(args, out, "lenet5-photos-*", 2)
    assert len(history(run)) < 30, "the run finished before it could be killed"
    recorded = json.loads((run / "splits.json").read_text())
    for i in range(10):  # new images arrive: the run must not see them
        shutil.copy(folder / "flag" / "flag_001.jpg", folder / "flag" / f"new_{i}.jpg")
    (folder / "dahlia" / "dahlia_003.jpg").unlink()  # one of the run's images disappears
    proc = subprocess.run(
        [*args[:4], "--resume", str(run), "--quiet", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "splits.json").read_text()) == recorded
    trained = json.loads((run / "metrics.json").read_text())
    test_files = recorded["splits"]["test"]["files"]
    missing = int("dahlia/dahlia_003.jpg" in test_files)
    assert trained["num_samples"] == len(test_files) - missing
    lr = [float(r["lr"]) for r in history(run)]  # the cosine schedule went on where it was
    assert all(b <= a for a, b in itertools.pairwise(lr[3:])) and lr[-1] < 1e-5
    assert main(["evaluate", str(run / "model.keras"), "--out", str(tmp_path / "e"), "--json"]) == 0
    assert (
        json.loads((tmp_path / "e" / "metrics.json").read_text())["confusion_matrix"]
        == (trained["confusion_matrix"])
    )


# peak memory from VmHWM: ru_maxrss would carry over the forking pytest process's own peak
MEMORY_CHILD = """
import re, sys
from cnnkeras.data import Preprocessing, load_dataset, make_pipeline
from cnnkeras.data._pipeline import resolve_cache
split = load_dataset("folder:" + sys.argv[1]).splits["train"]
prep = Preprocessing(256, 256, 1)
cache = resolve_cache(sys.argv[2], len(split) * prep.image_bytes, budget_mb=16)  # as train's plan
for batch in make_pipeline(split, prep, 3, training=True, cache=cache, epoch=0):
    pass
status = open("/proc/self/status").read()
print(cache, int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024)
"""


def test_memory_does_not_grow_with_the_folder(tmp_path, rng):
    """A folder larger than the cache budget streams from disk: 2,800 images take about the
    memory of 700, while caching the larger split decoded at 256x256 (560 MiB) shows what
    materialising would cost. An epoch of the training pipeline, in a process of its own."""
    from PIL import Image

    def folder(n):
        root = tmp_path / f"f{n}"
        for i in range(n):
            (root / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 255, (48, 48), dtype=np.uint8)
            Image.fromarray(pixels, "L").save(root / f"c{i % 3}" / f"{i}.jpg")
        return root

    def peak_mib(root, cache):
        proc = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(root), cache],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        used, peak = proc.stdout.split()[-2:]
        return used, int(peak)

    small, large = folder(700), folder(2800)
    (_, base), (streamed_as, streamed) = peak_mib(small, "auto"), peak_mib(large, "auto")
    cached_as, cached = peak_mib(large, "memory")
    assert (streamed_as, cached_as) == ("none", "memory")
    # the streamed growth against a quarter of what caching costs: a regression that holds the
    # split (or a copy of a batch per image) fails it, the noise of a busy machine does not
    assert streamed - base < 0.25 * (cached - base), (base, streamed, cached)
    assert cached - base > 400, (base, cached)  # the measurement sees materialising


def test_schedules_warm_up_and_decay_as_planned():
    from cnnkeras.data import Preprocessing
    from cnnkeras.train._callbacks import learning_rate
    from cnnkeras.train._plan import plan_training

    prep = Preprocessing(16, 16, 1)

    def at(schedule, steps):
        plan = plan_training(TrainConfig(epochs=20, schedule=schedule), 640, 64, prep, 1024)
        lr = learning_rate(1e-3, plan)
        return plan, [float(lr(s)) if callable(lr) else lr for s in steps]

    plan, (start, peak, end) = at("cosine", (0, 2 * 40, 20 * 40))  # 640 images: 40 steps
    assert (plan.batch_size, plan.warmup_epochs, plan.early_stop_from) == (16, 2, 10)
    assert start == 0 and math.isclose(peak, 1e-3, rel_tol=1e-6) and end < 1e-9
    plan, (start, peak, end) = at("onecycle", (0, 5 * 40, 20 * 40))
    assert plan.warmup_epochs == 5 and math.isclose(start, 1e-3 / 25, rel_tol=1e-6)
    assert math.isclose(peak, 1e-3, rel_tol=1e-6) and math.isclose(end, 1e-8, rel_tol=1e-3)
    plan, values = at("plateau", (0, 500))
    assert values == [1e-3, 1e-3] and plan.warmup_epochs == 0


def test_optimizer_loss_dropout_and_cache_flags_reach_the_run(tmp_path, monkeypatch):
    """`--optimizer rmsprop --momentum 0.5 --loss mse --dropout 0.3 --cache disk` on the
    command line: the saved model's optimizer, momentum, loss and dropout layer are those,
    and the run's decoded images sat in files under its cache folder while it trained."""
    cached: list[list[str]] = []

    class Peek(keras.callbacks.Callback):
        def __init__(self, folder):
            super().__init__()
            self.folder = folder

        def on_epoch_end(self, epoch, logs=None):
            cached.append(sorted(p.name for p in self.folder.rglob("*") if p.is_file()))

    run_callback(monkeypatch, lambda kwargs: Peek(kwargs["cache_dir"]))
    args = ["train", "--dataset", "digits", "--image-size", "16", "--epochs", "2"]
    args += ["--optimizer", "rmsprop", "--momentum", "0.5", "--loss", "mse"]
    args += ["--dropout", "0.3", "--cache", "disk", "--quiet", "--out", str(tmp_path)]
    assert main(args) == 0
    (run,) = tmp_path.iterdir()
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert model.optimizer.momentum == pytest.approx(0.5)
    assert isinstance(model.loss, keras.losses.MeanSquaredError)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates and rates == pytest.approx([0.3] * len(rates))  # LeNet-5 has none by default
    assert json.loads((run / "config.json").read_text())["plan"]["cache"] == "disk"
    assert len(cached) == 2 and any(name.endswith(".index") for name in cached[-1]), cached
    assert not (run / "cache").exists()  # removed when the run ended
