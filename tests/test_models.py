"""The model zoo: every registered model is built, checked and round-tripped here."""

import keras
import numpy as np
import pytest
from helpers import offline_application, one_per_builder

from cnnkeras.errors import UserError
from cnnkeras.models import (
    count_macs,
    create_model,
    efficientnet,
    list_models,
    model_info,
    transfer_weights,
)
from cnnkeras.models._layers import make_divisible
from cnnkeras.models._metadata import STATS
from cnnkeras.models._registry import register_model
from cnnkeras.models.efficientnet import EFFICIENTNET_PUBLISHED, scaling

ALL = list_models()
EACH_PATH = one_per_builder()  # structural tests; every variant is counted against the table
WITH_KERAS_APP = [n for n in EACH_PATH if model_info(n).keras_application]


def small_shape(name: str, channels: int = 3) -> tuple[int, int, int]:
    size = max(model_info(name).min_size, 32)
    return (size, size, channels)


def predict(model, x):
    """Eager inference: tracing a 800-layer graph for model.predict costs more than it saves."""
    return keras.ops.convert_to_numpy(model(x, training=False))


# ---------------------------------------------------------------- every model


@pytest.mark.parametrize("name", EACH_PATH)
def test_builds_small_with_7_classes(name, rng):
    channels = model_info(name).input_shape[-1]
    model = create_model(name, input_shape=small_shape(name, channels), num_classes=7)
    x = rng.uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
    y = predict(model, x)
    assert y.shape == (2, 7)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-4)  # softmax by default


@pytest.mark.parametrize("name", EACH_PATH)
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_features_without_top(name, pooling, rng):
    model = create_model(name, input_shape=small_shape(name), include_top=False, pooling=pooling)
    assert len(model.output.shape) == 2
    assert not any(layer.name == "predictions" for layer in model.layers)
    y = predict(model, rng.uniform(0, 1, (1, *model.input_shape[1:])).astype("float32"))
    assert y.shape == (1, model.output.shape[-1]) and np.all(np.isfinite(y))


@pytest.mark.parametrize("name", EACH_PATH)
def test_minimum_input_size(name):
    info = model_info(name)
    m = info.min_size
    model = create_model(name, input_shape=(m, m, 3), num_classes=3)
    assert model.output.shape[-1] == 3
    with pytest.raises(UserError, match=f"minimum is {m}x{m}"):
        create_model(name, input_shape=(m - 1, m, 3))


@pytest.mark.parametrize("name", EACH_PATH)
def test_keras_round_trip_safe_mode(name, tmp_path, rng):
    model = create_model(name, input_shape=small_shape(name, 1), num_classes=4)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.uniform(0, 1, (2, *model.input_shape[1:])).astype("float32")
    np.testing.assert_array_equal(predict(model, x), predict(loaded, x))


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_canonical_params_and_macs_are_pinned(name):
    """create_model(name) is the paper's configuration, and it matches the pinned table."""
    info = model_info(name)
    model = create_model(name)
    assert model.input_shape[1:] == info.input_shape
    assert model.output.shape[-1] == info.num_classes
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (model.count_params(), trainable, count_macs(model)) == STATS[name][:3]


def test_pinned_table_covers_the_registry():
    assert set(STATS) == set(ALL)


KERAS_TWINS = [n for n in ALL if model_info(n).keras_application]


def test_every_model_has_a_published_parameter_count():
    assert all(STATS[n].published or n in KERAS_TWINS for n in ALL)
    assert {"vgg16", "resnet50", "mobilenet_v1", "mobilenet_v2", "efficientnet_b0"} <= set(
        KERAS_TWINS
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", KERAS_TWINS)
def test_parameter_counts_equal_keras_applications(name):
    """The reference built offline (random weights): the same parameters, BN statistics
    included."""
    twin = getattr(keras.applications, model_info(name).keras_application)(weights=None)
    assert STATS[name].params == twin.count_params()


@pytest.mark.parametrize("name", [n for n in ALL if STATS[n].published])
def test_published_parameter_counts(name):
    # published counts leave out BN statistics (torchvision) or have no BN (the classics)
    assert STATS[name].trainable == STATS[name].published


@pytest.mark.parametrize("name", [n for n in ALL if STATS[n].paper_macs])
def test_macs_agree_with_papers(name):
    published, tolerance = STATS[name].paper_macs
    assert STATS[name].macs == pytest.approx(published, rel=tolerance)


# ---------------------------------------------------------------- weights from keras.applications


def randomise_batch_norm(model, rng):
    """Random BN statistics, so that a copy that misses them shows in the outputs."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, g.shape),
                    rng.normal(0, 0.1, b.shape),
                    rng.normal(0, 0.1, m.shape),
                    rng.uniform(0.5, 1.5, v.shape),
                ]
            )


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_KERAS_APP)
def test_transfer_weights_from_keras_applications(name, rng):
    app = getattr(keras.applications, model_info(name).keras_application)
    config = dict(input_shape=(64, 64, 3), classifier_activation=None)
    source = app(weights=None, classes=7, **config)
    randomise_batch_norm(source, rng)
    target = create_model(name, num_classes=7, **config)
    assert target.count_params() == source.count_params()
    transfer_weights(source, target)
    x = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = predict(source, x)
    np.testing.assert_allclose(predict(target, x), expected, rtol=1e-5, atol=1e-5)
    # and the copy really moved weights: a fresh model disagrees
    fresh = create_model(name, num_classes=7, **config)
    assert not np.allclose(predict(fresh, x), expected, atol=1e-3)


def test_transfer_weights_refuses_mismatched_models():
    source = create_model("lenet5", num_classes=10)
    target = create_model("lenet5", num_classes=5)
    before = [w.copy() for w in target.get_weights()]
    with pytest.raises(UserError, match="same input shape, classes"):
        transfer_weights(source, target)
    for a, b in zip(before, target.get_weights(), strict=True):  # nothing half-copied
        np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match="layers with weights"):
        transfer_weights(create_model("resnet18", input_shape=(32, 32, 3)), target)


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0"])
def test_imagenet_weights_load_through_the_copy_path(name, monkeypatch, rng):
    """The download is replaced by a local keras.applications model; the rest is real."""
    info = model_info(name)
    offline_app = offline_application(
        monkeypatch, info.keras_application, prepare=lambda m: randomise_batch_norm(m, rng)
    )
    model = create_model(name, weights="imagenet", input_shape=(96, 96, 3), include_top=False)
    calls = offline_app.calls
    assert calls[0]["weights"] == "imagenet" and calls[0]["input_shape"] == (96, 96, 3)
    x = rng.uniform(0, 255, (1, 96, 96, 3)).astype("float32")
    x_reference = x
    if info.family == "efficientnet":
        # keras.applications adds a 1/sqrt(stddev) rescaling for its ImageNet checkpoints only;
        # with the untouched Normalization (mean 0, variance 1) it equals scaling the input.
        assert any(layer.name == "rescaling_1" for layer in model.layers)
        x_reference = x / np.sqrt(np.array([0.229, 0.224, 0.225], dtype="float32"))
    np.testing.assert_allclose(
        predict(model, x), predict(offline_app.model, x_reference), atol=1e-4
    )


def test_imagenet_weights_refused_where_none_exist():
    with pytest.raises(UserError, match="no official ImageNet weights"):
        create_model("lenet5", weights="imagenet")
    with pytest.raises(UserError, match="3-channel"):
        create_model("resnet50", weights="imagenet", input_shape=(64, 64, 1), include_top=False)
    with pytest.raises(UserError, match="1000 classes"):
        create_model("resnet50", weights="imagenet", num_classes=5)


# ---------------------------------------------------------------- registry


def test_list_models_patterns():
    assert list_models("resnet*") == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert list_models("efficientnet_b*") == [f"efficientnet_b{i}" for i in range(8)]
    assert list_models("nothing*") == []
    assert len(ALL) == 20


def test_unknown_name_lists_closest_names():
    with pytest.raises(UserError, match="did you mean resnet50"):
        create_model("resnet5O")
    with pytest.raises(UserError, match="cnnkeras models"):
        create_model("xyzzy")


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(UserError, match=r"does not take option.*alpha.*it takes: input_shape"):
        create_model("resnet50", alpha=0.5)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):

        @register_model(family="lenet", paper="-", builder=lambda: None)
        def lenet5():
            return None


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="1 or 3 channels"):
        create_model("vgg16", input_shape=(64, 64, 2))
    with pytest.raises(UserError, match="activation must be one of"):
        create_model("lenet5", activation="gelu")
    with pytest.raises(UserError, match="pooling"):
        create_model("resnet18", include_top=False, pooling="sum")
    with pytest.raises(UserError, match="alpha"):
        create_model("mobilenet_v2", alpha=0)
    with pytest.raises(UserError, match="num_classes"):
        create_model("lenet5", num_classes=0)


# ---------------------------------------------------------------- family options


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg16"])
def test_batch_norm_variant(name):
    shape = small_shape(name)
    plain = create_model(name, input_shape=shape, num_classes=5)
    bn = create_model(name, input_shape=shape, num_classes=5, batch_norm=True)
    count = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers)
    assert count > 0
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_classic_activations(act, rng):
    model = create_model("lenet5", activation=act)
    names = [layer.name for layer in model.layers]
    expected = "c1_relu" if act == "relu" else "c1_act"
    assert expected in names
    layer = model.get_layer(expected)
    x = np.array([[-2.0, 0.5]], dtype="float32")
    reference = {
        "relu": np.maximum(x, 0),
        "leaky_relu": np.where(x > 0, x, 0.1 * x),
        "sigmoid": 1 / (1 + np.exp(-x)),
        "tanh": np.tanh(x),
    }[act]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), reference, rtol=1e-5)


def test_logits_without_softmax(rng):
    model = create_model("resnet18", input_shape=(32, 32, 3), classifier_activation=None)
    y = predict(model, rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32"))
    assert not np.allclose(y.sum(axis=1), 1.0)


def test_mobilenet_alpha_scales_width():
    full = create_model("mobilenet_v2", input_shape=(96, 96, 3))
    half = create_model("mobilenet_v2", input_shape=(96, 96, 3), alpha=0.5)
    assert half.get_layer("Conv1").filters == 16 and full.get_layer("Conv1").filters == 32
    assert half.count_params() < full.count_params()
    v1 = create_model("mobilenet_v1", input_shape=(96, 96, 3), alpha=0.25, depth_multiplier=2)
    assert v1.get_layer("conv_pw_13").filters == 256
    assert v1.get_layer("conv_dw_1").depth_multiplier == 2


def test_googlenet_auxiliary_heads():
    model = create_model("googlenet", aux_heads=True, num_classes=5)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 5)] * 3
    plain = create_model("googlenet", num_classes=5)
    assert plain.count_params() < model.count_params()


def test_efficientnet_compound_scaling_is_one_code_path():
    assert scaling(3) == EFFICIENTNET_PUBLISHED[3]
    width, depth, resolution, _ = scaling(1.5)
    assert (width, depth, resolution) == pytest.approx((1.1**1.5, 1.2**1.5, 276))
    assert (
        efficientnet(phi=2, input_shape=(64, 64, 3)).count_params()
        == STATS["efficientnet_b2"].params - 0
    )  # same table, same code
    between = efficientnet(phi=0.5, input_shape=(64, 64, 3))  # the rule: width 1.1**0.5
    assert between.get_layer("top_conv").filters == make_divisible(1280 * 1.1**0.5) == 1344
    assert (
        STATS["efficientnet_b0"].params < between.count_params() < STATS["efficientnet_b2"].params
    )
    assert between.name == "efficientnet_phi0.5"
    with pytest.raises(UserError, match="phi"):
        efficientnet(phi=-1)


def test_a_model_registered_outside_the_package_trains_and_exports(tmp_path):
    """cnnkeras/README.md's "Adding a model", run as it is in a fresh process (a registry
    of its own): the new family trains as a run does and exports with the phone runtimes'
    parity checked."""
    import json
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "cnnkeras" / "README.md").read_text()
    section = readme[readme.index("## Adding a model") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    check = (
        "\nimport json\n"
        "print('RESULT', json.dumps({'run': result, 'export': export}, default=str))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code + check],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    found = json.loads(line.removeprefix("RESULT "))
    run = tmp_path / found["run"]["run_dir"]  # relative to where it ran
    assert run.parent == tmp_path / "saved_models" and run.name.startswith("tiny_cnn-digits")
    record = json.loads((run / "config.json").read_text())
    assert record["arch"] == "tiny_cnn" and record["status"] == "done"
    assert found["run"]["test_accuracy"] > 0.6  # ten classes, two epochs: 0.84 measured
    out = tmp_path / found["export"]["out"]
    assert (out / "model_float32.tflite").stat().st_size > 1000
    row = found["export"]["variants"]["float32"]
    assert row["agreement"] == 1.0 and row["max_abs_diff"] < 1e-4, row  # the Keras answers
    assert row["compiled_model_max_diff"] <= 1e-6, row  # LiteRT's CompiledModel
    assert row["phone_agreement"] >= 0.9, row  # MediaPipe Tasks took the file as it is
