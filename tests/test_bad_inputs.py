"""Bad input, as a new or a hostile user gives it, to every command: exit status 2, one line on
stderr, no traceback, and not one byte changed of what existed before. One tiny run on a
folder whose names are not all UTF-8 serves every case."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import run_cli
from PIL import Image
from sklearn.datasets import load_digits

from cnnkeras.cli import main
from cnnkeras.train import TrainConfig, train

pytestmark = pytest.mark.xdist_group("bad_inputs")

LATIN1_CLASS = os.fsdecode(b"caf\xe9")  # a folder named in Latin-1: not UTF-8
ODD_FILE = os.fsdecode(b"\xff odd 'name'.png")


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A run on a folder of digit images (a class folder and a file with non-UTF-8 names),
    trained for two epochs, then put back in the state a kill leaves: status running, an
    epoch checkpoint, no report. Returns (run folder, image folder)."""
    root = tmp_path_factory.mktemp("bad")
    images = root / "digits"
    digits = load_digits()
    for label, name in enumerate([LATIN1_CLASS, "one", "two"]):
        folder = images / name
        folder.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(digits.target == label)[:20]):
            pixels = (digits.images[index] * 255 / 16).astype("uint8")
            file = folder / (ODD_FILE if (label, i) == (1, 0) else f"{i}.png")
            Image.fromarray(pixels).resize((16, 16)).save(file)
    config = TrainConfig(dataset=f"folder:{images}", image_size=16, epochs=2, batch_size=16)
    train(config, run_dir=root / "run", verbose=0)
    run = root / "run"
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "status": "running"}))
    (run / "checkpoint").mkdir()
    shutil.copy(run / "model.keras", run / "checkpoint" / "epoch-0001.keras")
    return run, images


def test_names_of_any_bytes_are_recorded_as_they_are(killed_run, capsysbinary):
    run, images = killed_run
    assert (run / "labels.txt").read_bytes().splitlines()[0] == b"caf\xe9"
    split = json.loads((run / "splits.json").read_text())
    files = [f for entry in split["splits"].values() for f in entry["files"]]
    assert os.path.join("one", ODD_FILE) in files  # JSON keeps the bytes as escapes
    assert main(["predict", str(run / "model.keras"), str(images / "one" / ODD_FILE)]) == 0
    out = capsysbinary.readouterr().out  # printed as the bytes they are, as ls prints them
    assert b"\xff odd 'name'.png: " in out and b"caf\xe9" in out


def _hashes(*folders: Path) -> dict:
    return {
        path: hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _refused(argv: list[str], capsys, *folders: Path, match: str) -> None:
    """``cnnkeras ARGV`` exits 2 with one line naming the problem; ``folders`` unchanged."""
    before = _hashes(*folders)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert match in err, err
    assert _hashes(*folders) == before


def _edited(run: Path, tmp_path: Path, edit) -> Path:
    """A copy of ``run`` with ``edit(copy)`` applied."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    edit(copy)
    return copy


def _lambda_checkpoint(path: Path) -> None:
    inputs = keras.Input((16, 16, 1))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.compile("adam", "mse")
    path.unlink()
    model.save(path)


CONFIG = "config.json"
CHECKPOINT = "checkpoint/epoch-0001.keras"


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda r: (r / CONFIG).write_text('{"plan": '), "config.json is not valid JSON"),
        (lambda r: (r / CONFIG).write_text("[]"), "holds a JSON list"),
        (lambda r: (r / CONFIG).write_text("{}"), "has no field 'plan'"),
        (
            lambda r: (r / CONFIG).write_text(
                json.dumps({**json.loads((r / CONFIG).read_text()), "plan": "garbage"})
            ),
            "has a field cnnkeras did not write",
        ),
        (lambda r: (r / "history.csv").write_text("epoch,loss\n0,x\n"), "not a history"),
        (
            lambda r: (r / CHECKPOINT).write_bytes((r / CHECKPOINT).read_bytes()[:5000]),
            "not a complete .keras file",
        ),
        (lambda r: _lambda_checkpoint(r / CHECKPOINT), "holds a Lambda layer"),
    ],
    ids=["not-json", "not-object", "empty", "bad-plan", "bad-history", "truncated", "lambda"],
)
def test_a_refused_resume_changes_nothing(killed_run, tmp_path, capsys, edit, match):
    run = _edited(killed_run[0], tmp_path, edit)
    _refused(["train", "--resume", str(run)], capsys, run, match=match)


def test_resume_when_the_data_moved_or_with_other_options_is_refused(killed_run, tmp_path, capsys):
    run, images = killed_run
    run = _edited(run, tmp_path, lambda r: None)
    moved = tmp_path / "moved"
    shutil.copytree(images, moved)
    shutil.rmtree(moved / "two")
    os.rename(images, tmp_path / "away")
    try:
        _refused(["train", "--resume", str(run)], capsys, run, match="no longer exists")
        _refused(
            ["train", "--resume", str(run), "--dataset", f"folder:{moved}"],
            capsys,
            run,
            match="of the run's train images",
        )
        _refused(
            ["train", "--resume", str(run), "--lr", "0.1", "--epochs", "9"],
            capsys,
            run,
            match="drop --epochs, --lr",
        )
    finally:
        os.rename(tmp_path / "away", images)


def test_output_that_cannot_be_written_is_refused_before_any_work(killed_run, tmp_path, capsys):
    run, images = killed_run
    a_file = tmp_path / "file"
    a_file.write_text("x")
    dataset = ["--dataset", f"folder:{images}", "--image-size", "16", "--epochs", "1"]
    _refused(["train", *dataset, "--out", str(a_file)], capsys, tmp_path, match="is a file")
    _refused(["train", *dataset, "--out", "/sys/cnnkeras"], capsys, tmp_path, match="cannot write")
    model = str(run / "model.keras")
    _refused(["export", model, "--out", str(a_file / "x")], capsys, tmp_path, match="is a file")
    _refused(
        ["compare", "--archs", "lenet5", "--dataset", "digits", "--out", str(a_file)],
        capsys,
        tmp_path,
        match="is a file",
    )
    _refused(
        ["compare", "--archs", "lenet5", "--dataset", "digits", "--set", "lenet5.nosuch=1"],
        capsys,
        tmp_path,
        match="does not take option(s) nosuch",
    )


def test_launch_refuses_impossible_requests_without_starting_anything(tmp_path):
    for args, match in [
        (["--processes", "1000"], "more than this machine's"),
        (["--processes", "1", "--port", "99999"], "between 1 and 65535"),
    ]:
        proc = run_cli("launch", *args, "--", "train", "--out", str(tmp_path))
        assert proc.returncode == 2 and match in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_two_runs_started_in_the_same_second_never_share_a_folder(tmp_path):
    from cnnkeras.train._folder import claim_run_dir

    config = TrainConfig(out=str(tmp_path))
    folders = {claim_run_dir(config, "digits") for _ in range(3)}
    assert len(folders) == 3 and all(f.is_dir() for f in folders)


def test_seed_states_go_back_into_a_model():
    """What an epoch checkpoint's seeds file holds: Keras saves no dropout seed state."""
    from cnnkeras.train._callbacks import seed_states, set_seed_states

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5)(keras.layers.Dense(4)(inputs)))
    model(np.ones((2, 4)), training=True)
    states = seed_states(model)
    assert len(states) == 1 and states[0][1] > 0
    fresh = keras.Model(inputs, keras.layers.Dropout(0.5)(keras.layers.Dense(4)(inputs)))
    set_seed_states(fresh, states)
    assert seed_states(fresh) == states
