"""The Keras private API cnnkeras relies on (cnnkeras/_keras_internals.py) still behaves as
it did when it was read: each check fails with a message naming the function to look at again,
so that a Keras upgrade that changes one is found here, not as a wrong number in a run."""

import ast
import inspect
from pathlib import Path

import keras
import numpy as np

import cnnkeras
from cnnkeras import _keras_internals as internals

PRIVATE = {
    "_keras_history",
    "_flatten_layers",
    "_model_variables_moving_average",
    "_update_model_variables_moving_average",
    "_get_seed_generator",
    "_is_improvement",
    "_generate_batch_mask",
    "_symbolic_build",
}


def _why(name: str) -> str:
    return (
        f"keras {keras.__version__} changed what cnnkeras._keras_internals.{name} relies on "
        f"(checked with {internals.CHECKED_WITH}); read it against the new Keras"
    )


def test_no_other_module_touches_keras_private_names():
    package = Path(cnnkeras.__file__).parent
    outside = sorted(
        f"{path.relative_to(package)}:{node.lineno} {node.attr}"
        for path in package.rglob("*.py")
        if path.name != "_keras_internals.py" and "node_modules" not in path.parts
        for node in ast.walk(ast.parse(path.read_text()))
        if (
            isinstance(node, ast.Attribute | ast.FunctionDef)
            and getattr(node, "attr", None) in PRIVATE
        )
        or (isinstance(node, ast.FunctionDef) and node.name in PRIVATE)
    )
    assert outside == [], "use cnnkeras/_keras_internals.py: " + ", ".join(outside)


def _small_model() -> keras.Model:
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs)


def test_graph_walking():
    model = _small_model()
    assert internals.producing_layer(model.outputs[0]) is model.get_layer("head"), _why(
        "producing_layer"
    )
    outer = keras.Sequential([keras.Input((4, 4, 1)), model])
    names = [layer.name for layer in internals.all_layers(outer)]
    assert {"conv", "head", model.name} <= set(names), _why("all_layers")
    augment = keras.layers.RandAugment(value_range=(0, 1))
    assert len(internals.all_layers(augment)) > 3, _why("all_layers")  # its inner layers


def test_the_weight_average_is_read_and_its_step_replaced():
    model = _small_model()
    optimizer = keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    seen = []

    def update(variables):  # a plain copy, as the first step of a warmed-up average is
        seen.append(len(variables))
        for variable, average in zip(variables, internals.ema_averages(optimizer), strict=True):
            average.assign(variable)

    internals.replace_ema_update(optimizer, update)  # before the train step is traced
    x, y = np.ones((2, 4, 4, 1), "float32"), np.eye(3, dtype="float32")[:2]
    model.fit(x, y, epochs=1, verbose=0)
    assert seen and set(seen) == {len(model.trainable_variables)}, _why("replace_ema_update")
    averages = internals.ema_averages(optimizer)
    assert len(averages) == len(model.trainable_variables), _why("ema_averages")
    for variable, average in zip(model.trainable_variables, averages, strict=True):
        assert np.array_equal(np.asarray(variable), np.asarray(average)), _why("ema_averages")


def test_training_state_is_built_before_the_train_function_is_traced():
    traces = []

    class Traced(keras.layers.Layer):  # Python in a layer's call runs when it is traced
        def call(self, x):
            traces.append(1)
            return x

    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(Traced()(inputs)))
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.Adam(use_ema=True)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    internals.build_training_state(model)
    assert optimizer.built, _why("build_training_state")
    assert len(optimizer.variables) > 3 * len(model.trainable_variables)  # moments and EMA
    traces.clear()
    x, y = np.ones((2, 4, 4, 1), "float32"), np.eye(3, dtype="float32")[:2]
    model.fit(x, y, epochs=1, verbose=0)
    # no variable is created inside the trace, so TensorFlow traces the train step once
    # (twice when the optimizer and the metrics are built in it)
    assert len(traces) == 1, _why("build_training_state")


def test_random_layers_take_the_given_seed_generator():
    flip = keras.layers.RandomFlip("horizontal", seed=1)
    image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    outputs = set()
    for seed in (0, 1, 2, 3, 4, 5):
        with internals.seed_generator([flip], keras.random.SeedGenerator(seed)):
            first = np.asarray(flip(image, training=True))
        with internals.seed_generator([flip], keras.random.SeedGenerator(seed)):
            again = np.asarray(flip(image, training=True))
        assert np.array_equal(first, again), _why("seed_generator")  # the generator decides
        outputs.add(first.tobytes())
    assert len(outputs) == 2, _why("seed_generator")  # and it is used: both flips happen
    assert "_get_seed_generator" not in vars(flip)  # put back


def test_early_stopping_compares_tuples():
    stop = internals.LexicographicEarlyStopping(patience=1)
    parameters = list(inspect.signature(keras.callbacks.EarlyStopping._is_improvement).parameters)
    assert parameters == ["self", "monitor_value", "reference_value"], _why(
        "LexicographicEarlyStopping"
    )
    assert stop._is_improvement((0.5, 0.2), (0.5, 0.1))
    assert not stop._is_improvement((0.5, 0.1), (0.5, 0.1))


def test_cutmix_weights_labels_by_the_pasted_pixels():
    layer = internals.pixel_counted_cutmix(1.0, seed=3)
    images = np.stack([np.zeros((7, 7, 1)), np.ones((7, 7, 1))]).astype("float32")
    labels = np.eye(2, dtype="float32")
    for _ in range(5):
        out = layer({"images": images, "labels": labels}, training=True)
        mixed, weights = np.asarray(out["images"]), np.asarray(out["labels"])
        # image 0 is zeros: its pixels that are 1 were pasted from image 1
        pasted = mixed[0].mean()
        assert np.isclose(weights[0, 1], pasted, atol=1e-6), _why("pixel_counted_cutmix")
