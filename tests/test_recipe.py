"""Training-recipe options: class weights for imbalanced data (by hand, through the plan to
the loss Keras computes), the imbalance warning, and decoupled weight decay."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnkeras.cli import main
from cnnkeras.data import Preprocessing
from cnnkeras.errors import UserError
from cnnkeras.train import TrainConfig, plan_training
from cnnkeras.train._class_weights import class_weights, imbalance_note
from cnnkeras.train._run import compile_for_training


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
    from cnnkeras.train._run import FitData

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
    ],
)
def test_recipe_option_errors(args, message, capsys):
    assert main(["train", "--dataset", "digits", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
