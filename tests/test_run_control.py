"""The run control that decides what a user gets at the end of `train` (issue 32): early
stopping fires when and only when its rule says (patience counted only from the plan's
epoch), the best epoch is chosen by validation accuracy with ties broken by the lower loss and
is never overwritten by a worse one, the plateau rule halves the rate and halves it again, and
all of these counters come back after a crash so that a resumed run is the run it would have
been. Real `train` runs on digits, with the validation curve scripted: a callback placed
before the run's own callbacks writes the curve's values into the epoch's logs, so early
stopping, the plateau rule, the checkpoint and history.csv all see the curve."""

import json

import keras
import numpy as np
import pytest
from helpers import history, run_callback

from cnnkeras.train import TrainConfig, resume, train


class Scripted(keras.callbacks.Callback):
    """Sets each epoch's validation accuracy and loss from ``curve``; keeps each epoch's
    weights; raises ``Crash`` when epoch ``crash_at`` begins (after the last one's files)."""

    def __init__(self, curve, crash_at: int | None = None):
        super().__init__()
        self.curve, self.crash_at, self.weights = curve, crash_at, {}

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.crash_at:
            raise Crash(epoch)

    def on_epoch_end(self, epoch, logs=None):
        logs["val_accuracy"], logs["val_loss"] = self.curve[epoch]
        self.weights[epoch] = [np.array(w) for w in self.model.get_weights()]


class Crash(Exception):
    pass


@pytest.fixture
def scripted(monkeypatch):
    """``scripted(curve)`` puts a Scripted callback in the next runs' callbacks (after the
    precise batch norm, before early stopping); each call replaces the last one's."""
    current = []
    run_callback(monkeypatch, lambda _: current[-1])

    def install(curve, crash_at=None):
        current.append(Scripted(curve, crash_at))
        return current[-1]

    return install


def _config(tmp_path, **options) -> TrainConfig:
    options = {"epochs": 12, "patience": 3, "schedule": "constant", "lr": 0.01, **options}
    options.setdefault("scores", "raw")  # the best epoch's weights as trained (no temperature)
    return TrainConfig(
        arch="lenet5", dataset="digits", batch_size=256, augment=[], out=str(tmp_path), **options
    )


def _rows(run_dir) -> list[tuple[int, float, float, float]]:
    return [
        (int(r["epoch"]), float(r["val_accuracy"]), float(r["val_loss"]), float(r["lr"]))
        for r in history(run_dir)
    ]


def test_early_stopping_and_the_best_epoch_follow_the_rules(scripted, tmp_path):
    """Patience 3: the best is epoch 4 (0.7 like epochs 3 and 5, at the lowest loss; epoch 7
    ties it exactly, which is no improvement), so the run stops after epoch 7 with the best
    model holding epoch 4's weights."""
    curve = [(0.5, 2.0), (0.6, 1.5), (0.7, 1.0), (0.7, 0.9), (0.7, 0.95), (0.65, 0.8)]
    curve += [(0.7, 0.9)] + [(0.9, 0.1)] * 5  # 0.9 would win, were the run not stopped
    script = scripted(curve)
    result = train(_config(tmp_path), verbose=0)
    run = tmp_path / next(p.name for p in tmp_path.iterdir())
    assert [r[0] for r in _rows(run)] == list(range(7))
    assert result["status"] == "early_stopped" and result["best_epoch"] == 4
    assert result["val_accuracy"] == pytest.approx(0.7)
    best = keras.saving.load_model(run / "model.keras", safe_mode=True).get_weights()
    for saved, kept in zip(best, script.weights[3], strict=True):
        np.testing.assert_array_equal(saved, kept)
    assert not all(np.array_equal(a, b) for a, b in zip(best, script.weights[6], strict=True))
    assert json.loads((run / "config.json").read_text())["status"] == "early_stopped"


def test_no_early_stop_in_the_first_half_of_a_decaying_schedule(scripted, tmp_path):
    """Cosine over 12 epochs counts patience from epoch 7 (the plan's early_stop_from, 6):
    a curve that peaks at epoch 1 and stays lower stops after epoch 10, not after epoch 4."""
    scripted([(0.9, 0.1)] + [(0.5, 1.0)] * 11)
    result = train(_config(tmp_path, schedule="cosine"), verbose=0)
    run = tmp_path / next(p.name for p in tmp_path.iterdir())
    plan = json.loads((run / "config.json").read_text())["plan"]
    assert plan["early_stop_from"] == 6
    assert len(_rows(run)) == 10 and result["status"] == "early_stopped"
    assert result["best_epoch"] == 1  # the best model is the best of every epoch


def test_plateau_halves_and_halves_again(scripted, tmp_path):
    """The plateau rule (patience max(2, 6 // 3) = 2, factor 0.5) on a curve flat after
    epoch 2: the rate halves after epochs 4, 6 and 8, and early stopping (patience 6) ends
    the run after epoch 8."""
    scripted([(0.5, 1.0), (0.6, 0.9)] + [(0.6, 0.9)] * 10)
    result = train(_config(tmp_path, schedule="plateau", patience=6, lr=0.01), verbose=0)
    run = tmp_path / next(p.name for p in tmp_path.iterdir())
    lrs = [r[3] for r in _rows(run)]
    assert lrs == pytest.approx([0.01] * 3 + [0.005] * 2 + [0.0025] * 2 + [0.00125])
    assert result["status"] == "early_stopped" and result["best_epoch"] == 2


def test_a_crashed_run_resumes_with_its_counters(scripted, tmp_path):
    """A plateau run that crashes after epoch 5 (plateau waiting 1, early stopping waiting 3,
    the rate halved once) and is resumed writes the history of the run that never crashed:
    the same rates, the same stop, the same best epoch."""
    curve = [(0.5, 1.0), (0.6, 0.9)] + [(0.6, 0.9)] * 3 + [(0.6, 0.95)] * 7
    options = {"schedule": "plateau", "patience": 6, "lr": 0.01}
    scripted(curve)
    whole = train(_config(tmp_path / "whole", **options), verbose=0)
    scripted(curve, crash_at=5)
    with pytest.raises(Crash):
        train(_config(tmp_path / "crashed", **options), verbose=0)
    run = next((tmp_path / "crashed").iterdir())
    assert len(_rows(run)) == 5
    scripted(curve)
    resumed = resume(run, verbose=0)
    assert _rows(run) == _rows(next((tmp_path / "whole").iterdir()))
    assert (resumed["status"], resumed["best_epoch"]) == (whole["status"], whole["best_epoch"])
