"""Training-recipe options: class weights for imbalanced data (by hand, through the plan to
the loss Keras computes), the imbalance warning, and decoupled weight decay."""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_split

from cnnkeras._keras_internals import ema_averages
from cnnkeras.cli import main
from cnnkeras.data import Preprocessing
from cnnkeras.errors import UserError
from cnnkeras.train import TrainConfig, compile_for_training, plan_training
from cnnkeras.train._class_weights import class_weights, imbalance_note


def test_class_weights_by_hand(tmp_path):
    labels = [0] * 6 + [1] * 2
    # balanced: n / (K n_c) = 8 / (2 * 6) and 8 / (2 * 2)
    assert class_weights("balanced", labels, ["a", "b"]) == pytest.approx((8 / 12, 2.0))
    assert class_weights("none", labels, ["a", "b"]) is None
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"b": 3}))
    assert class_weights(str(path), labels, ["a", "b"]) == (1.0, 3.0)  # a: left out, 1
    path.write_text(json.dumps({"c": 3}))
    with pytest.raises(UserError, match="names c, not classes of the data"):
        class_weights(str(path), labels, ["a", "b"])
    with pytest.raises(UserError, match="must be balanced, none or a JSON file"):
        class_weights("weighted", labels, ["a", "b"])
    assert imbalance_note([0] * 3 + [1], ["a", "b"]) is None  # 3x: not yet
    assert "'a' has 4 images, 'b' 1" in imbalance_note([0] * 4 + [1], ["a", "b"])


def test_the_plan_carries_class_weights_and_warns_on_imbalance():
    prep = Preprocessing(16, 16, 1)
    labels = np.array([0] * 400 + [1] * 40)
    plain = plan_training(TrainConfig(), 440, 40, prep, 1024, labels=labels, class_names=["a", "b"])
    assert plain.class_weights is None
    assert any(r.startswith("warning: imbalanced training split") for r in plain.reasons)
    config = TrainConfig(class_weight="balanced")
    plan = plan_training(config, 440, 40, prep, 1024, labels=labels, class_names=["a", "b"])
    assert plan.class_weights == pytest.approx((0.55, 5.5))
    assert type(plan).from_dict(json.loads(json.dumps(plan.to_dict()))) == plan  # resumable


def test_class_weights_reach_the_loss():
    """The fit arguments a plan gives (one-hot labels, an endless dataset, steps per epoch):
    Keras's loss is the class-weighted mean of the per-image losses."""
    from cnnkeras.train import FitData

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.0), keras.losses.CategoricalCrossentropy())
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    y = keras.utils.to_categorical([0, 0, 0, 1, 1, 2], 3)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    weights = {0: 0.5, 1: 1.0, 2: 4.0}
    fit = FitData(ds, ds, [], 1, 1, weights).fit_kwargs()
    assert fit["class_weight"] == weights
    logs = model.fit(epochs=1, verbose=0, shuffle=False, **fit).history
    per_image = keras.losses.categorical_crossentropy(y, model.predict(x, verbose=0)).numpy()
    w = np.array([weights[c] for c in y.argmax(1)])
    assert logs["loss"][0] == pytest.approx(float((w * per_image).mean()), rel=1e-4)
    assert logs["loss"][0] != pytest.approx(float(per_image.mean()), rel=1e-3)


def test_weight_decay_is_decoupled():
    """AdamW-style: a weight the loss does not reach still shrinks by lr * weight_decay."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    compile_for_training(model, TrainConfig(lr=0.1, weight_decay=0.5, loss="mse"))
    assert model.optimizer.weight_decay == pytest.approx(0.5)
    kernel = np.asarray(model.layers[0].kernel).copy()
    x, y = np.zeros((4, 2), "float32"), np.ones((4, 1), "float32")  # zero input: no kernel gradient
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    np.testing.assert_allclose(
        np.asarray(model.layers[0].kernel), kernel * (1 - 0.1 * 0.5), rtol=1e-5
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class-weight", "nope.json"], "--class-weight must be balanced, none or a JSON file"),
        (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
        (["--mixup", "-1"], "--mixup must be >= 0"),
        (["--cutmix", "-0.5"], "--cutmix must be >= 0"),
        (["--ema", "1.5"], "--ema must be in (0, 1)"),
        (["--lr", "fast"], "expected auto or a number, got 'fast'"),
        (["--augment", "mixup,warp"], "unknown augmentation warp"),
    ],
)
def test_recipe_option_errors(args, message, capsys):
    assert main(["train", "--dataset", "digits", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_lr_find_errors(capsys):
    assert main(["lr-find", "--dataset", "digits", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "--steps must be >= 10" in err and err.count("\n") == 1


# ---------------------------------------------------------------- augmentation


def _digits_split(n=64):
    from cnnkeras.data import load_dataset

    data = load_dataset("digits", seed=0, verbose=0)
    return data, data.splits["train"].subset(np.arange(n))


@pytest.mark.parametrize("kinds", [("mixup",), ("cutmix",), ("mixup", "cutmix")])
def test_mixed_labels_sum_to_one_and_follow_the_images(kinds):
    """Image i is all i, its label class i: after mixing, an image's mean is the mean of the
    classes its label weights, for MixUp's blend and CutMix's box alike."""
    from cnnkeras.data._pipeline import MIX_STRENGTHS, mix_batches, mixing_layers

    n = 10
    x = np.broadcast_to(np.arange(n, dtype="float32")[:, None, None, None], (n, 8, 8, 1))
    y = np.eye(n, dtype="float32")
    ds = tf.data.Dataset.from_tensors((x, y, tf.zeros(n))).repeat(4)
    mixed = 0
    layers = mixing_layers({k: MIX_STRENGTHS[k] for k in kinds}, seed=1)
    for xm, ym, _ in mix_batches(ds, layers, seed=1):
        xm, ym = xm.numpy(), ym.numpy()
        np.testing.assert_allclose(ym.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(xm.mean((1, 2, 3)), ym @ np.arange(n), atol=1e-4)
        mixed += int(((ym > 1e-6).sum(1) > 1).sum())
    assert mixed > n  # most images of the four batches are mixtures


def test_training_pipeline_mixes_and_validation_does_not():
    from cnnkeras.data import make_pipeline

    _, split = _digits_split()
    prep = Preprocessing(16, 16, 1)
    for training, expect_mixed in ((True, True), (False, False)):
        ds = make_pipeline(
            split, prep, 10, batch_size=64, training=training, augment=("mixup",), cache="none"
        )
        _, y = next(iter(ds))
        assert (((y.numpy() > 1e-6).sum(1) > 1).any()) == expect_mixed


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_changes_images_within_their_range(channels):
    from cnnkeras.data import make_pipeline

    _, split = _digits_split()
    prep = Preprocessing(16, 16, channels)
    kwargs = dict(batch_size=64, training=True, cache="none", seed=3)
    (x0, _), (x1, _) = (
        next(iter(make_pipeline(split, prep, 10, augment=a, **kwargs)))
        for a in ((), ("randaugment",))
    )
    assert not np.allclose(x0, x1)
    assert float(np.min(x1)) >= 0.0 and float(np.max(x1)) <= 1.0 + 1e-5


def test_mixup_and_cutmix_options_resolve_into_the_plan():
    prep = Preprocessing(16, 16, 1)

    def plan(**kw):
        return plan_training(TrainConfig(**kw), 640, 64, prep, 1024)

    assert plan().mix == () and "mixup" not in plan().augment
    p = plan(mixup=0.4)
    assert p.augment[-1] == "mixup" and dict(p.mix) == {"mixup": 0.4}
    p = plan(augment=("rotation", "mixup", "cutmix"))
    assert dict(p.mix) == {"mixup": 0.2, "cutmix": 1.0}  # Keras's defaults when only listed
    assert "mixup" not in plan(augment=("mixup",), mixup=0.0).augment  # 0 removes it
    expanded = plan(augment=("auto", "randaugment")).augment  # auto inside a list
    assert expanded == ("rotation", "zoom", "translation", "randaugment")
    assert type(p).from_dict(json.loads(json.dumps(p.to_dict()))) == p  # resumable


# ---------------------------------------------------------------- learning-rate finder


def test_lr_find_curve_has_a_minimum_and_suggests_below_divergence(tmp_path):
    from cnnkeras.train import lr_find
    from cnnkeras.train._lr_find import suggest, valley

    png = tmp_path / "lr.png"
    found = lr_find(TrainConfig(dataset="digits", image_size=16), plot=png, verbose=0)
    assert png.read_bytes()[:4] == b"\x89PNG"
    losses = np.array(found.losses)
    low = int(np.argmin(losses))
    assert 0 < low < len(losses) - 1  # a minimum inside the curve, not at an end
    assert losses[low] < 0.9 * losses[0]  # the loss fell
    assert found.diverged_at is not None and found.suggestion < found.lrs[low] < found.diverged_at
    assert found.rule == "steepest" and set(found.others) == {"minimum/10", "valley"}
    assert suggest(found.lrs, found.losses)[0] == found.suggestion
    # the rule by hand: flat, a gentle fall, a steep fall from 1e-3, the minimum just under
    # 1e-2, then a steeper fall from a bump (past the minimum: not taken)
    lrs = list(np.logspace(-6, 1, 71))
    curve = [2.0] * 20 + [2.0 - 0.01 * i for i in range(1, 11)]  # to 1e-3: 1.9
    curve += [1.9 - 0.1 * i for i in range(1, 11)]  # steepest just after 1e-3, to 0.9
    curve += [0.9 + 0.1 * i for i in range(1, 11)]  # up to 1.9
    curve += [1.9 - 0.2 * i for i in range(1, 5)] + [5.0] * 17  # a bump's fall, then up
    assert len(curve) == len(lrs) and int(np.argmin(curve)) == 39
    chosen, _ = suggest(lrs, curve)
    assert 1e-3 <= chosen < lrs[39]
    # the valley rule by hand: the longest fall is 9..1 (indices 0 to 5, counted from -1 as
    # fastai does); a third of its length is 2: index -1 + 2 + 1
    assert valley([9, 5, 4, 3, 2, 1, 7, 8]) == 2


def test_lr_find_restores_the_weights():
    from cnnkeras.train import lr_range_test, prepare

    config = TrainConfig(dataset="digits", image_size=16)
    _, data, prep, model, plan = prepare(config, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    lr_range_test(model, config, plan, data, prep, steps=30, verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_with_lr_auto_records_the_choice(tmp_path):
    args = ["train", "--dataset", "digits", "--image-size", "16", "--epochs", "1", "--lr", "auto"]
    assert main([*args, "--quiet", "--out", str(tmp_path)]) == 0
    (run,) = tmp_path.glob("lenet5-digits-*")
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == config["lr_find"]["suggestion"] and 1e-6 < config["lr"] < 1.0
    assert (run / config["lr_find"]["plot"]).read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- weight averaging


def test_ema_evaluates_and_saves_the_average_with_its_batch_norm_statistics(tmp_path):
    """The epoch checkpoint (what training resumes from) holds the raw weights and the
    optimizer's averages; the best model holds the averages, with batch-norm statistics
    recomputed for them (closer to the average's own than to the raw weights')."""
    from cnnkeras.train import compile_for_training, prepare
    from cnnkeras.train._callbacks import trainable_batch_norms
    from cnnkeras.train._folder import start_run
    from cnnkeras.train._run import fit_epochs

    config = TrainConfig(
        dataset="digits", image_size=16, epochs=2, ema=0.9, model_options={"batch_norm": True}
    )
    _, data, prep, model, plan = prepare(config, verbose=0)
    compile_for_training(model, config, plan)
    run = start_run(tmp_path, config, {}, data, prep, model, plan, title="t", verbose=0)
    checkpoint = fit_epochs(run, start_epoch=0, epochs=2, verbose=0)
    assert checkpoint.best_epoch == 1  # the saved best model is of the last epoch
    last = keras.saving.load_model(tmp_path / "checkpoint" / "epoch-0001.keras", safe_mode=True)
    best = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    averages = [np.asarray(v) for v in ema_averages(last.optimizer)]
    raw = [np.asarray(v) for v in last.trainable_variables]
    saved = [np.asarray(v) for v in best.trainable_variables]
    assert any(not np.allclose(a, r) for a, r in zip(averages, raw, strict=True))
    for a, s in zip(averages, saved, strict=True):
        np.testing.assert_allclose(s, a, rtol=1e-6)

    def recomputed(m):
        """The statistics precise BN gives ``m`` on the batches the run's second validation
        saw (a fresh pipeline of the same seed, its first pass skipped)."""
        from cnnkeras.train import fit_pipelines

        fit = fit_pipelines(m, data, prep, plan, seed=config.seed, augment=(), cache_dir=None)
        (precise,) = fit.callbacks
        for _ in precise.dataset.take(precise.batches):
            pass
        precise.set_model(m)
        precise.recompute()
        return [np.asarray(layer.moving_mean) for layer in trainable_batch_norms(m)]

    stored = [np.asarray(layer.moving_mean).copy() for layer in trainable_batch_norms(best)]
    for a, b in zip(stored, recomputed(best), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    from_raw = recomputed(last)
    assert any(not np.allclose(a, b, rtol=1e-3) for a, b in zip(stored, from_raw, strict=True))


def test_the_full_recipe_survives_a_kill(tmp_path):
    """--lr auto, EMA, MixUp and the one-cycle schedule with batch norm: killed after two
    epochs, resumed to the end, each epoch once, the schedule continued from the recorded
    rate, and the saved model loads."""
    from helpers import CLI, history, kill_after_epochs, run_cli

    from cnnkeras.train._callbacks import learning_rate
    from cnnkeras.train._plan import TrainingPlan

    args = [*CLI, "train", "--dataset", "digits", "--image-size", "16", "--epochs", "6"]
    args += ["--lr", "auto", "--ema", "0.9", "--mixup", "0.2", "--schedule", "onecycle"]
    args += ["--set", "batch_norm=true", "--patience", "100", "--out", str(tmp_path), "--quiet"]
    run = kill_after_epochs(args, tmp_path, "lenet5-digits-*", 2)
    assert len(history(run)) < 6, "the run finished before it could be killed"
    proc = run_cli("train", "--resume", str(run), "--quiet", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = history(run)
    assert [int(r["epoch"]) for r in rows] == list(range(6))
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == config["lr_find"]["suggestion"] and config["ema"] == 0.9
    plan = TrainingPlan.from_dict(config["plan"])
    schedule = learning_rate(config["lr"], plan)
    for r in rows:
        step = (int(r["epoch"]) + 1) * plan.steps_per_epoch
        assert float(r["lr"]) == pytest.approx(float(schedule(step)), rel=1e-4)
    keras.saving.load_model(run / "model.keras", safe_mode=True)


# ---------------------------------------------------------------- test-time augmentation


def test_tta_copies_follow_the_recorded_augmentation():
    from cnnkeras.tta import tta_copies

    digits = tta_copies(["rotation", "zoom", "translation"])
    assert len(digits) == 6 and not any(c["flip"] for c in digits)  # no mirrored digit
    photos = tta_copies(["flip", "rotation", "zoom", "translation"])
    assert len(photos) == 12 and sum(c["flip"] for c in photos) == 6
    assert [c["name"] for c in tta_copies([])] == ["original"]
    assert len(tta_copies(["randaugment", "mixup", "cutmix"])) == 1  # no fixed copies


def test_tta_calls_the_model_on_each_augmented_copy_and_averages():
    from cnnkeras.tta import TTA, augmented

    seen = []

    def model(batch):
        seen.append(batch.copy())
        return np.stack([batch.mean((1, 2, 3)), batch[:, :, :8].mean((1, 2, 3))], 1)

    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype("float32")
    tta = TTA(model, ["flip", "translation"])
    scores = tta(x)
    assert len(seen) == len(tta.copies) == 6
    for batch, copy in zip(seen, tta.copies, strict=True):
        np.testing.assert_array_equal(batch, augmented(x, copy))
    np.testing.assert_array_equal(seen[0], x)  # the original is one of them
    np.testing.assert_array_equal(seen[3], x[:, :, ::-1])  # and its mirror image
    assert not np.allclose(seen[1], x)  # a shifted copy differs
    np.testing.assert_allclose(scores, np.mean([model(b) for b in seen[:6]], 0), rtol=1e-6)


def test_evaluate_and_predict_report_tta_beside_the_plain_result(tmp_path):
    from PIL import Image

    from cnnkeras.evaluate import evaluate_model
    from cnnkeras.predict import predict_files

    train_args = ["train", "--dataset", "digits", "--image-size", "16", "--epochs", "2"]
    assert main([*train_args, "--quiet", "--out", str(tmp_path)]) == 0
    (run,) = tmp_path.glob("lenet5-digits-*")
    m = evaluate_model(run / "model.keras", tta=True)
    assert m["tta"]["copies"][0] == "original" and len(m["tta"]["copies"]) == 6
    assert m["accuracy"] > 0.3
    # the TTA accuracy, computed again here: the model's mean score over the six copies
    from cnnkeras.tta import augmented, tta_copies

    record = json.loads((run / "config.json").read_text())
    x, labels = run_split(run, "test")
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    copies = tta_copies(record["plan"]["augment"])
    scores = np.mean([model.predict(augmented(x, c), verbose=0) for c in copies], axis=0)
    expected = float(np.mean(scores.argmax(1) == labels))
    assert m["tta"]["accuracy"] == pytest.approx(expected, abs=1e-9)
    assert expected != m["accuracy"]  # the copies change some answers on this split
    report = (Path(m["report_dir"]) / "report.md").read_text()
    assert "with test-time augmentation (6 copies" in report
    plain = evaluate_model(run / "model.keras")
    assert "tta" not in plain and plain["accuracy"] == m["accuracy"]
    image = tmp_path / "digit.png"
    Image.fromarray((np.eye(8) * 255).astype("uint8")).save(image)
    (r,) = predict_files(run / "model.keras", [str(image)], tta=True)
    assert len(r["tta"]) == 3 and r["tta"] != r["top"]


@pytest.mark.parametrize(
    ("schedule", "lr"), [("cosine", "auto"), ("plateau", 0.01), ("constant", 0.01)]
)
def test_each_schedule_runs_with_ema(schedule, lr, tmp_path):
    """Each schedule peaks at (or holds) the run's rate, lr-find's choice with `--lr auto`
    (run once here: the schedule takes the rate as it comes); onecycle goes through a kill and
    a resume above."""
    from cnnkeras.train import train

    config = TrainConfig(
        dataset="digits", image_size=16, epochs=2, lr=lr, ema=0.9, schedule=schedule
    )
    result = train(dataclasses.replace(config, out=str(tmp_path)), verbose=0)
    record = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert result["status"] == "done"
    assert record["lr"] == (record["lr_find"]["suggestion"] if lr == "auto" else lr)
    rows = (Path(result["run_dir"]) / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    lrs = [float(r.split(",")[header.index("lr")]) for r in rows[1:]]
    if schedule == "cosine":
        assert lrs[1] < lrs[0] <= record["lr"]
    else:
        assert lrs == pytest.approx([record["lr"]] * 2)


def test_the_weight_average_warms_up():
    """Step t averages with decay min(0.999, (1 + t) / (10 + t)), the first step copies: after
    30 steps the average is near the current weights, not the initial ones."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    compile_for_training(
        model, TrainConfig(lr=0.05, ema=0.999, loss="mse"), None, steps_per_execution=1
    )
    kernels = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: kernels.append(np.asarray(model.layers[0].kernel))
    )
    x = np.random.default_rng(0).normal(size=(30 * 4, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[record])
    expected = kernels[0]
    for t, kernel in enumerate(kernels[1:], start=1):
        decay = min(0.999, (1 + t) / (10 + t))
        expected = decay * expected + (1 - decay) * kernel
    average = np.asarray(ema_averages(model.optimizer)[0])
    np.testing.assert_allclose(average, expected, rtol=1e-5, atol=1e-6)
    first = kernels[0]
    assert np.abs(average - kernels[-1]).sum() < 0.5 * np.abs(average - first).sum()


def test_a_run_started_again_keeps_where_its_rate_came_from(tmp_path):
    """Killed in its first epoch (config.json, no checkpoint), a --lr auto run starts again
    at the recorded rate without a second range test, and keeps the test's record."""
    from cnnkeras.train import resume, train

    config = TrainConfig(dataset="digits", image_size=16, epochs=1, lr="auto", out=str(tmp_path))
    run = Path(train(config, verbose=0)["run_dir"])
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "status": "running"}))
    (run / "history.csv").unlink()
    result = resume(run, verbose=0)
    again = json.loads((run / "config.json").read_text())
    assert result["status"] == "done" and again["lr"] == record["lr"]
    assert again["lr_find"] == record["lr_find"]


def test_auto_epochs_give_60_epochs_and_at_least_1500_steps():
    """`--epochs auto`: 60 epochs, or more where an epoch is short, so that a run takes at
    least 1,500 optimizer steps (10 steps an epoch: 150 epochs)."""
    prep = Preprocessing(16, 16, 1)
    small = plan_training(TrainConfig(epochs="auto", batch_size=64), 640, 64, prep, 1024)
    assert (small.steps_per_epoch, small.epochs) == (10, 150)
    large = plan_training(TrainConfig(epochs="auto", batch_size=64), 64_000, 640, prep, 1024)
    assert (large.steps_per_epoch, large.epochs) == (1000, 60)
    assert any("150 epochs" in reason for reason in small.reasons)
