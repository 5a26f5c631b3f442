"""--distribute mirrored: parity with one device, and train, resume, finetune and tuner trials
under it, on the CPU split into two logical devices (each in a fresh process: the split must
come before TensorFlow starts its devices)."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from helpers import CLI, history, kill_after_epochs, run_cli

from cnnkeras.errors import UserError
from cnnkeras.train import TrainConfig, train

PARITY = Path(__file__).with_name("distributed_parity.py")
MIRRORED = ["--distribute", "mirrored", "--devices", "cpu:2"]


def parity(tmp_path, *args: str) -> dict:
    out = tmp_path / "parity.json"
    proc = subprocess.run(
        [sys.executable, str(PARITY), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_lenet5_mirrored_gives_the_single_device_loss_curve_and_weights(tmp_path):
    """50 steps, the same global batches: float32 sums in another order, nothing else."""
    result = parity(tmp_path, "lenet5", "--steps", "50")
    mirrored = result["mirrored"]
    assert mirrored["finite"]
    assert mirrored["loss_max_rel"] < 1e-4 and mirrored["weights_rel"] < 1e-4
    assert result["single"]["last_loss"] < 0.6 * result["single"]["first_loss"]  # it learned


def test_resnet_mirrored_with_synchronised_batch_norm_is_single_device_training(tmp_path):
    """In float64 (where float32's rounding, which batch norm's backward pass amplifies, no
    longer hides a difference) the two agree to 1e-9; per-replica batch norm, the error
    that synchronisation removes, is off by more than 1e-3. The saved model keeps its
    synchronised layers and loads with safe_mode."""
    saved = tmp_path / "mirrored.keras"
    result = parity(tmp_path, "resnet8", "--steps", "50", "--float64", "--save", str(saved))
    mirrored, per_replica = result["mirrored"], result["mirrored_per_replica_bn"]
    assert mirrored["finite"]
    assert mirrored["loss_max_rel"] < 1e-9 and mirrored["weights_rel"] < 1e-9
    assert per_replica["loss_max_rel"] > 1e-3
    assert result["saved"]["synchronized_bn"] == 9  # every batch-norm layer of ResNet-8
    assert result["saved"]["predict_max_abs_diff"] < 1e-9


def test_mirrored_train_is_killed_resumes_and_finetunes(tmp_path):
    """A mirrored run killed mid-way resumes under the same strategy to the end; its model
    is the base of a mirrored finetune; config.json records the replicas."""
    args = [*CLI, "train", "--dataset", "digits", "--image-size", "16", "--epochs", "6"]
    args += ["--batch-size", "64", *MIRRORED, "--no-augment", "--out", str(tmp_path), "--quiet"]
    run = kill_after_epochs(args, tmp_path, "lenet5-digits-*", 2)
    assert len(history(run)) < 6, "the run finished before it could be killed"
    proc = run_cli("train", "--resume", str(run))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mirrored over 2 device(s)" in proc.stdout
    assert [int(r["epoch"]) for r in history(run)] == list(range(6))
    record = json.loads((run / "config.json").read_text())
    assert (record["status"], record["replicas"], record["distribute"]) == ("done", 2, "mirrored")
    assert record["plan"]["steps_per_execution"] == 1  # keras#19246
    assert record["result"]["test_accuracy"] > 0.5  # it learned (chance: 0.1)
    keras.saving.load_model(run / "model.keras", safe_mode=True)
    tuned = tmp_path / "tuned"
    proc = run_cli(
        "finetune", "--base", str(run / "model.keras"), "--dataset", "digits",
        "--epochs-head", "1", *MIRRORED, "--out", str(tuned), "--quiet", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = Path(json.loads(proc.stdout)["run_dir"])
    assert json.loads((folder / "config.json").read_text())["replicas"] == 2


def test_a_mirrored_tuner_trial(tmp_path):
    proc = run_cli(
        "tune", "--arch", "lenet5", "--dataset", "digits", "--image-size", "16",
        "--max-trials", "1", "--epochs", "1", *MIRRORED, "--dir", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    trial = json.loads((tmp_path / "search" / "trial_0" / "cnnkeras.json").read_text())
    assert trial["replicas"] == 2 and trial["epochs"] == 1
    assert "mirrored over" not in proc.stdout  # --quiet is quiet


@pytest.mark.parametrize(
    "options, message",
    [
        ({"devices": "cpu:2"}, "`devices` needs `distribute` mirrored"),
        ({"distribute": "mirrored", "devices": "gpu:7"}, "no device 'gpu:7' here"),
        ({"distribute": "mirrored", "devices": "cpu:0"}, "cpu:N needs a count >= 1"),
        ({"distribute": "mirrored", "devices": "cpu:0,cpu:0"}, "names a device twice"),
        ({"distribute": "ring"}, "`distribute` must be one of none, mirrored"),
    ],
)
def test_bad_distribution_options_name_the_parameter(options, message, tmp_path):
    with pytest.raises(UserError, match=message):
        train(TrainConfig(dataset="digits", epochs=1, out=str(tmp_path), **options), verbose=0)
    assert not any(tmp_path.iterdir())  # refused before a run folder


def test_a_bad_device_is_a_one_line_error_on_the_command_line():
    proc = run_cli("train", "--dataset", "digits", "--distribute", "mirrored", "--devices", "gpu:7")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "--devices: no device 'gpu:7'" in proc.stderr
