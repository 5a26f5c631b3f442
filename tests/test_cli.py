"""The command line: real child processes for the entry points, in-process calls for the rest."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli

from cnnkeras.cli import main
from cnnkeras.models import list_models

run = run_cli


def test_models_json_child_process():
    proc = run("models", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["models"]
    assert [r["name"] for r in rows] == list_models()
    lenet = next(r for r in rows if r["name"] == "lenet5")
    assert lenet["params"] == 61_706 and lenet["input_shape"] == [32, 32, 1]
    assert proc.stderr == ""  # TensorFlow's load-time chatter is kept out


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "cnnkeras"  # where pip puts the environment's scripts
    assert exe.is_file(), "pip install -r requirements.txt installs the cnnkeras command"
    proc = subprocess.run(
        [exe, "explain", "conv", "--input", "32", "--kernel", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["output"] == 28


COMPARE = ["compare", "--dataset", "digits", "--archs", "lenet5"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["summary", "resnet5"], "unknown model 'resnet5'; did you mean"),
        (["summary", "resnet50", "--input-shape", "16,16,3"], "minimum is 32x32"),
        (["summary", "resnet50", "--input-shape", "big"], "expected H,W,C"),
        (["summary", "lenet5", "--set", "alpha=2"], "does not take option"),
        (["explain", "conv", "--input", "3", "--kernel", "5"], "larger than the padded"),
        (["explain", "conv", "--image", "1 2; 3"], "give both --image and --filter"),
        (["frobnicate"], "invalid choice"),
        (["explain", "separable", "--input", "8"], "required"),
        # library errors name parameters; the command line names its flags
        (["train", "--lr", "0"], "--lr must be auto or > 0"),
        (["train", "--cache-budget", "-1"], "--cache-budget must be >= 0"),
        (["explain", "scaling", "--phi", "-1"], "--phi must be >= 0"),
        (["demo", "transfer", "--k", "0"], "--k must be >= 1"),
        ([*COMPARE, "--epochs", "2", "--budget-minutes", "1"], "not allowed with argument"),
        ([*COMPARE, "--budget-minutes", "0"], "--budget-minutes must be > 0"),
        ([*COMPARE, "--seeds", "0"], "--seeds must be >= 1"),
        ([*COMPARE, "--set", "alpha=1"], "expected ARCH.KEY=VALUE"),
        ([*COMPARE, "--set", "vgg16.filters=8"], "--set for vgg16: not among the compared"),
        (["compare", "--dataset", "digits", "--archs", "lenet6"], "unknown model 'lenet6'"),
        (["compare", "--dataset", "digits"], "one of the arguments --archs --all is required"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("cnnkeras: error: ")


def test_user_error_in_child_process_has_no_traceback():
    proc = run("summary", "vgg16", "--input-shape", "8,8,3")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "cnnkeras: error: vgg16: input 8x8 is too small; the minimum is 32x32"
    )


def test_summary_json(capsys):
    assert main(["summary", "lenet5", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["total"]["params"] == 61_706
    assert r["total"]["macs"] == sum(layer["macs"] for layer in r["layers"])
    c1 = next(layer for layer in r["layers"] if layer["name"] == "c1_conv")
    assert c1["output_shape"] == [28, 28, 6] and c1["macs"] == 28 * 28 * 25 * 6


def test_summary_with_options(capsys):
    args = ["summary", "mobilenet_v2", "--input-shape", "96,96,1", "--classes", "5"]
    assert main([*args, "--set", "alpha=0.35", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["input_shape"] == [96, 96, 1]
    assert r["layers"][-1]["output_shape"] == [5]


@pytest.mark.parametrize(
    "args, key, value",
    [
        (["conv", "--input", "8", "--kernel", "3", "--stride", "2"], "output", 3),
        (["conv", "--image", "1 2; 3 4", "--filter", "1 0; 0 1"], "feature_map", [[5.0]]),
        (
            [
                "separable",
                "--input",
                "4",
                "--kernel",
                "3",
                "--in-channels",
                "2",
                "--out-channels",
                "4",
            ],
            "ratio",
            pytest.approx(1 / 4 + 1 / 9),
        ),
        (["receptive-field", "--layers", "2"], "kernel", 3),
        (["scaling", "--phi", "2"], "resolution", 296),
    ],
)
def test_explain_json_is_one_object(args, key, value, capsys):
    assert main(["explain", *args, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out)[key] == value


def test_explain_text_mentions_keras_floor(capsys):
    assert main(["explain", "conv", "--input", "8", "--kernel", "3", "--stride", "2"]) == 0
    out = capsys.readouterr().out
    assert "3.5 is not an integer: Keras floors it to 3" in out


def test_bench_train_times_an_epoch_as_train_runs_it(capsys):
    small = ["--repeats", "1", "--image-size", "16", "--json"]
    assert main(["bench", "train", "--steps", "6", "--val-images", "50", *small]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["steps"] == 6 and r["steps_per_execution"] == 6  # divides the epoch
    assert r["val_steps"] % 6 == 0 and r["images_per_sec"] > 0
    assert main(["bench", "train", "--steps", "6", "--steps-per-execution", "4", *small]) == 0
    assert json.loads(capsys.readouterr().out)["steps_per_execution"] == 4


def _subcommand(parser, name):
    import argparse

    (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subs.choices[name]


def test_config_options_are_generated_from_the_dataclasses():
    from dataclasses import fields

    from cnnkeras.cli import build_parser
    from cnnkeras.train import FinetuneConfig, TrainConfig
    from cnnkeras.tuning import Experiment

    parser = build_parser()
    for command, cls in (
        ("train", TrainConfig),
        ("finetune", FinetuneConfig),
        ("tune", Experiment),
    ):
        actions = {}
        for action in _subcommand(parser, command)._actions:
            actions.setdefault(action.dest, action)  # --augment before --no-augment
        options = [f for f in fields(cls) if "help" in f.metadata]
        assert len(options) >= 10
        for f in fields(cls):
            if "help" in f.metadata:  # every documented field is a flag, with the field's help
                assert actions[f.name].help.startswith(f.metadata["help"]), (command, f.name)
            else:  # internal fields are not
                assert f.name not in actions, (command, f.name)
        for action in actions.values():
            assert "--json" in action.option_strings or action.dest in {
                *(f.name for f in options),
                "help",
                "quiet",
                "resume",
                "experiment",
                "workers",
                "host",
                "max_memory_growth_mb",
                "retrain_best",
                "seeds",
                "baseline",
            }, (command, action.dest)


def test_given_options_become_config_values_and_absent_ones_stay_defaults(tmp_path):
    from cnnkeras._options import given
    from cnnkeras.cli import build_parser
    from cnnkeras.train import TrainConfig
    from cnnkeras.tuning import Experiment, load_experiment

    parser = build_parser()
    argv = ["train", "--batch-size", "32", "--augment", "flip,zoom", "--set", "activation=relu"]
    argv += ["--cache-budget", "64", "--epochs", "auto", "--warmup-epochs", "2"]
    values = given(parser.parse_args(argv), TrainConfig)
    assert values == {
        "batch_size": 32,
        "augment": ("flip", "zoom"),
        "model_options": {"activation": "relu"},
        "cache_budget_mb": 64.0,
        "epochs": "auto",
        "warmup_epochs": 2,
    }
    config = TrainConfig(**values)
    config.validate()
    assert (config.arch, config.lr) == (TrainConfig.arch, TrainConfig.lr)  # absent: defaults
    assert given(parser.parse_args(["train", "--no-augment"]), TrainConfig) == {"augment": ()}
    # tune: a flag overrides the experiment file; an absent flag leaves the file's value
    path = tmp_path / "exp.toml"
    path.write_text('arch = "lenet5"\nmax_trials = 7\nepochs = 3\n')
    args = parser.parse_args(["tune", str(path), "--epochs", "2"])
    experiment = load_experiment(args.experiment, **given(args, Experiment))
    assert (experiment.max_trials, experiment.epochs, experiment.name) == (7, 2, "exp")
