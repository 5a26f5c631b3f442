"""cnnkeras demo CLAIM: each demo runs in a reduced form, its table has the columns it
promises, its networks differ only in the block in question, the measured costs follow the
lecture's formulas, and each verdict holds and fails on hand-made rows as its rule says."""

import inspect
import json

import keras
import numpy as np
import pytest

from cnnkeras.cli import main
from cnnkeras.demos import run_demo
from cnnkeras.demos._blocks import block_model
from cnnkeras.demos.activations import activations_held, gradient_norms, plain_stack
from cnnkeras.demos.batchnorm import batchnorm_held, vgg_style
from cnnkeras.demos.dropout import dropout_held
from cnnkeras.demos.receptive_field import receptive_field_held
from cnnkeras.demos.residual import cifar_resnet, count_adds, residual_held
from cnnkeras.demos.separable import separable_held
from cnnkeras.errors import UserError
from cnnkeras.models import count_macs

SMALL = {"epochs": 1, "train_images": 200}


def _check(result: dict, tmp_path) -> None:
    assert result["rows"] and isinstance(result["held"], bool) and result["verdict"]
    for row in result["rows"]:
        assert list(row) == result["columns"] or set(result["columns"]) <= set(row)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    json.dumps(result)  # what --json prints


def test_residual_demo_plain_nets_have_no_skip_connections(tmp_path):
    assert count_adds(cifar_resnet(20, skips=False)) == 0
    assert count_adds(cifar_resnet(20, skips=True)) == 9  # 3 stages of n = 3 blocks
    with pytest.raises(UserError, match="6n \\+ 2"):
        cifar_resnet(21, skips=True)
    result = run_demo(
        "residual", (0,), depths=(8, 14), widths=(8, 8, 8), plot=tmp_path / "curves.png", **SMALL
    )
    _check(result, tmp_path)
    adds = {r["network"]: r["skip connections (Add)"] for r in result["rows"]}
    assert adds == {"plain-8": 0, "residual-8": 3, "plain-14": 0, "residual-14": 6}


def test_activations_demo_sigmoid_gradients_vanish_with_depth(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 1, (32, 28, 28, 1)).astype("float32")
    y = np.arange(32) % 10
    sigmoid = gradient_norms(plain_stack("sigmoid", 12), x, y)
    relu = gradient_norms(plain_stack("relu", 12), x, y)
    assert len(sigmoid) == len(relu) == 12
    # sigmoid's derivative is at most 1/4: the first layer's gradient shrinks with depth
    assert sigmoid[0] / sigmoid[-1] < 1e-3 < relu[0] / relu[-1]
    result = run_demo("activations", (0,), depth=6, plot=tmp_path / "curves.png", **SMALL)
    _check(result, tmp_path)
    assert [r["activation"] for r in result["rows"]] == ["sigmoid", "relu"]
    assert len(result["gradient_norms"]["relu"]) == 6


def test_batchnorm_demo_differs_only_in_batch_norm(tmp_path):
    with_bn, without = vgg_style(True, 4), vgg_style(False, 4)
    kinds = lambda m: [type(layer).__name__ for layer in m.layers]  # noqa: E731
    assert [k for k in kinds(with_bn) if k != "BatchNormalization"] == kinds(without)
    assert kinds(with_bn).count("BatchNormalization") == 4
    result = run_demo("batchnorm", (0,), width=4, plot=tmp_path / "curves.png", **SMALL)
    _check(result, tmp_path)
    assert [(r["batch norm"], r["lr"]) for r in result["rows"]] == [
        ("no", 0.01),
        ("yes", 0.01),
        ("no", 0.1),
        ("yes", 0.1),
    ]


def test_dropout_demo_reports_the_gap(tmp_path):
    result = run_demo("dropout", (0,), epochs=2, train_images=100, plot=tmp_path / "curves.png")
    _check(result, tmp_path)
    assert [r["dropout"] for r in result["rows"]] == [0.0, 0.5]
    for row in result["rows"]:
        train, val, gap = (
            float(row[k].split()[0]) for k in ("train accuracy", "val accuracy", "gap")
        )
        assert gap == pytest.approx(train - val, abs=2e-3)


def test_receptive_field_and_separable_costs_follow_the_formulas(tmp_path):
    c = 8
    five, three = block_model("one 5x5", 28, c), block_model("two 3x3", 28, c)
    assert five.count_params() == 25 * c * c + c
    assert three.count_params() == 2 * (9 * c * c + c)
    assert count_macs(three) / count_macs(five) == pytest.approx(18 / 25)
    result = run_demo("receptive-field", (0,), channels=c, plot=tmp_path / "curves.png", **SMALL)
    _check(result, tmp_path)
    assert [r["params"] for r in result["rows"]] == [25 * c * c + c, 2 * (9 * c * c + c)]
    assert all(r["latency ms"] > 0 and r["receptive field"] == 5 for r in result["rows"])

    result = run_demo("separable", (0,), channels=c, plot=tmp_path / "curves.png", **SMALL)
    _check(result, tmp_path)
    standard, separable = result["rows"]
    assert standard["params"] == 9 * c * c + c
    assert separable["params"] == 9 * c + c * c + c  # depthwise, pointwise, bias
    assert result["mac_ratio"] == pytest.approx(1 / c + 1 / 9)


def test_demo_command(tmp_path, capsys):
    plot = tmp_path / "dropout.png"  # the cheapest demo: the command's wiring is the point
    args = ["demo", "dropout", "--seeds", "1", "--epochs", "1", "--plot", str(plot)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("claim: dropout regularises") and "| 0.5 |" in out
    assert ("held: " in out or "did not hold: " in out) and plot.is_file()
    assert main(["demo", "residual", "--seeds", "0"]) == 2
    assert "--seeds must hold at least one seed" in capsys.readouterr().err


def test_each_verdict_holds_and_fails_as_its_rule_says():
    """Hand-made rows at each side of every rule: an inverted comparison or a dropped
    condition turns one of these red."""
    bn = [{"_epochs": 5, "_final": 0.9}, {"_epochs": 3, "_final": 0.95}] * 2  # lr, higher lr
    assert batchnorm_held(bn)
    assert not batchnorm_held([*bn[:2], {"_epochs": 5, "_final": 0.9}, {"_epochs": 6, "_final": 1}])
    assert not batchnorm_held(
        [*bn[:2], {"_epochs": 5, "_final": 0.9}, {"_epochs": 3, "_final": 0.8}]
    )
    drop = [{"_gap": 0.2, "_val": 0.8}, {"_gap": 0.1, "_val": 0.8}]
    assert dropout_held(drop)
    assert not dropout_held([drop[0], {"_gap": 0.3, "_val": 0.9}])
    assert not dropout_held([drop[0], {"_gap": 0.1, "_val": 0.79}])
    act = [{"_ratio": 1e-4, "_val": 0.2}, {"_ratio": 1e-2, "_val": 0.9}]  # sigmoid, ReLU
    assert activations_held(act)
    assert not activations_held([act[0], {"_ratio": 5e-4, "_val": 0.9}])
    assert not activations_held([act[0], {"_ratio": 1e-2, "_val": 0.25}])

    def nets(plain_shallow, plain_deep, res_shallow, res_deep):
        values = {"plain-8": plain_shallow, "plain-20": plain_deep}
        values |= {"residual-8": res_shallow, "residual-20": res_deep}
        return [{"network": k, "_train": v} for k, v in values.items()]

    assert residual_held(nets(0.9, 0.7, 0.9, 0.95), 8, 20)
    assert not residual_held(nets(0.7, 0.9, 0.9, 0.95), 8, 20)  # plain did not degrade
    assert not residual_held(nets(0.9, 0.7, 0.9, 0.6), 8, 20)  # residual did not rescue
    rf = [{"params": 100, "_val": 0.9}, {"params": 72, "_val": 0.895}]  # one 5x5, two 3x3
    assert receptive_field_held(rf)
    assert not receptive_field_held([rf[0], {"params": 120, "_val": 0.95}])
    assert not receptive_field_held([rf[0], {"params": 72, "_val": 0.88}])
    sep = [{"MACs": 100, "_val": 0.9}, {"MACs": 13, "_val": 0.885}]  # standard, separable
    assert separable_held(sep)
    assert not separable_held([sep[0], {"MACs": 60, "_val": 0.9}])
    assert not separable_held([sep[0], {"MACs": 13, "_val": 0.87}])


def test_a_demo_is_declared_once_and_registered_by_its_module():
    from cnnkeras.demos import DEMOS, demo_function, register_demo

    assert set(DEMOS) == {
        "batchnorm",
        "dropout",
        "activations",
        "residual",
        "receptive-field",
        "separable",
        "transfer",
    }
    for name, demo in DEMOS.items():  # each module registers the function its name runs
        function = demo_function(name)
        assert function.__module__ == f"cnnkeras.demos.{demo.module}", name
        assert set(demo.options) <= set(inspect.signature(function).parameters), name
    with pytest.raises(ValueError, match="not declared"):
        register_demo("undeclared")(lambda seeds: {})
    with pytest.raises(ValueError, match="already registered"):
        register_demo("dropout")(lambda seeds: {})
    with pytest.raises(UserError, match="unknown demo 'nope'; choose batchnorm"):
        demo_function("nope")
