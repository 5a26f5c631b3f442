"""Mixed precision (`--precision`): a mixed model keeps its output and depthwise layers in
float32 and turns into a float32 twin with the same weights; `auto` keeps float32 on a CPU
without bfloat16 units and takes bfloat16 only when the probe finds it faster by the margin;
a bfloat16 run records its precision, is killed and resumes from a bfloat16 checkpoint, and
saves and exports a float32 model within the export's parity bars; tuner trials build in the
experiment's precision."""

from __future__ import annotations

import json
import re

import keras
import numpy as np
import pytest
from helpers import CLI, kill_after_epochs

from cnnkeras.export import export_model
from cnnkeras.models import create_model
from cnnkeras.train import _precision, resume


def _small_mobilenet() -> keras.Model:
    return create_model("mobilenet_v2", input_shape=(32, 32, 3), num_classes=3, alpha=0.35)


def test_a_mixed_model_computes_in_bfloat16_but_its_output_and_depthwise_layers():
    keras.utils.set_random_seed(0)
    mixed = _precision.build_in_precision("bfloat16", _small_mobilenet)
    policies = {type(layer).__name__: set() for layer in mixed.layers}
    for layer in mixed.layers:
        policies[type(layer).__name__].add(layer.dtype_policy.name)
    assert policies["Conv2D"] == {"mixed_bfloat16"}
    assert policies["DepthwiseConv2D"] == {"float32"}
    assert mixed.layers[-1].dtype_policy.name == "float32"  # the softmax classifier
    assert _precision.precision_of(mixed) == "bfloat16"
    x = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    out = mixed(x, training=False)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy was put back

    twin = _precision.as_float32(mixed)
    assert {layer.dtype_policy.name for layer in twin.layers} == {"float32"}
    assert _precision.precision_of(twin) == "float32"
    for a, b in zip(mixed.get_weights(), twin.get_weights(), strict=True):
        assert a.dtype == np.float32 and np.array_equal(a, b)  # float32 variables, copied
    exact = keras.ops.convert_to_numpy(twin(x, training=False))
    assert np.abs(exact - keras.ops.convert_to_numpy(out)).max() < 0.05  # bfloat16's rounding
    assert _precision.as_float32(twin) is twin


def _lenet() -> keras.Model:
    return create_model("lenet5", num_classes=3)


def _compile(model: keras.Model) -> None:
    model.compile(optimizer="adam", loss="categorical_crossentropy")


def test_auto_keeps_float32_without_bfloat16_units_and_takes_bfloat16_by_the_margin(
    monkeypatch,
):
    chosen, kept, why = _precision.choose("auto", _lenet, 8, _compile, flags=set(), gpus=0)
    assert (chosen, kept) == ("float32", ()) and "no bfloat16 units" in why
    asked = _precision.choose("bfloat16", _lenet, 8, _compile, flags=set())
    assert asked[:2] == ("bfloat16", ("DepthwiseConv2D",))  # the default rule when asked
    # the real probe: a model in each precision, a few steps each, a choice that follows
    # its own timings (LeNet-5 has no depthwise layer: one bfloat16 build)
    chosen, kept, why = _precision.choose("auto", _lenet, 8, _compile, flags={"amx_bf16"})
    timed = re.fullmatch(
        r".*takes ([\d.]+) ms in bfloat16 \(classifier alone in float32\) against "
        r"([\d.]+) ms in float32 .*",
        why,
    )
    bf16_ms, f32_ms = float(timed[1]), float(timed[2])
    assert chosen == ("bfloat16" if f32_ms / bf16_ms >= _precision.PROBE_MARGIN else "float32")
    # the margin rule, on timings the test sets
    for f32, bf16, expected in ((1.0, 0.95, "float32"), (1.0, 0.5, "bfloat16")):
        times = iter((f32, bf16))
        monkeypatch.setattr(_precision, "_step_seconds", lambda *a, times=times: next(times))
        got = _precision.choose("auto", _lenet, 8, _compile, flags={"avx512_bf16"})
        assert got.precision == expected, got


@pytest.mark.parametrize(
    ("timings", "expected", "said"),
    [
        ((1.0, 0.5, 0.8), ("bfloat16", ("DepthwiseConv2D",)), "bfloat16 (DepthwiseConv2D in"),
        ((1.0, 0.8, 0.5), ("bfloat16", ()), "bfloat16 (classifier alone in float32): "),
        ((1.0, 0.95, 0.97), ("float32", ()), "float32: "),  # neither by the margin
    ],
)
def test_auto_measures_which_layers_stay_float32(monkeypatch, timings, expected, said):
    """float32, bfloat16 with depthwise convolutions in float32, bfloat16 throughout: the
    fastest, and bfloat16 only by the margin."""
    built = []
    times = iter(timings)

    def step_seconds(model, *args):
        depthwise = [x for x in model.layers if isinstance(x, keras.layers.DepthwiseConv2D)]
        built.append({layer.dtype_policy.name for layer in depthwise})
        return next(times)

    monkeypatch.setattr(_precision, "_step_seconds", step_seconds)
    choice = _precision.choose("auto", _small_mobilenet, 8, _compile, flags={"amx_bf16"})
    assert built == [{"float32"}, {"float32"}, {"mixed_bfloat16"}]  # the three builds probed
    assert (choice.precision, choice.float32_layers) == expected
    assert choice.why.startswith(f"precision {said}"), choice.why


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16 amx_tile amx_bf16\n")
    assert {"avx512_bf16", "amx_bf16"} <= _precision.cpu_flags(info)
    assert _precision.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.slow
def test_a_bfloat16_run_resumes_mixed_and_saves_and_exports_float32(tmp_path):
    args = [
        *CLI,
        "train",
        *("--dataset", "digits", "--image-size", "16", "--epochs", "3", "--patience", "100"),
        *("--precision", "bfloat16", "--quiet", "--out", str(tmp_path / "runs")),
    ]
    run = kill_after_epochs(args, tmp_path, "runs/*", 2)  # epoch 1's checkpoint is written
    record = json.loads((run / "config.json").read_text())
    assert record["precision"] == "bfloat16" and record["plan"]["precision"] == "bfloat16"
    assert record["plan"]["float32_layers"] == ["DepthwiseConv2D"]
    checkpoint = sorted((run / "checkpoint").glob("epoch-*.keras"))[-1]
    resumed_from = keras.saving.load_model(checkpoint, safe_mode=True)
    assert _precision.precision_of(resumed_from) == "bfloat16"  # resume trains on in bfloat16
    result = resume(run, verbose=0)
    assert result["epochs_run"] == 3 and result["test_accuracy"] > 0.5
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    report = export_model(
        run / "model.keras", variants=("float32", "int8"), out=tmp_path / "export", verbose=0
    )
    assert report["variants"]["float32"]["agreement"] >= 0.999
    assert report["warnings"] == []  # the export's own bars, int8 included, as for float32 runs


def test_tuner_trials_build_their_models_in_the_experiment_s_precision():
    from types import SimpleNamespace

    import keras_tuner as kt

    from cnnkeras.tuning import Experiment
    from cnnkeras.tuning._hypermodel import ZooHyperModel

    experiment = Experiment(arch="lenet5", dataset="digits", precision="bfloat16")
    prep = SimpleNamespace(input_shape=(32, 32, 1))
    hypermodel = ZooHyperModel(experiment, SimpleNamespace(num_classes=10), prep)
    model = hypermodel.build(kt.HyperParameters())
    assert _precision.precision_of(model) == "bfloat16"
    assert model.layers[-1].dtype_policy.name == "float32"
    retrain = experiment.train_config(epochs=1)
    assert retrain.precision == "bfloat16"  # the retrained best trains as the trials did
