"""Calibrated scores: ECE, NLL and Brier on a hand-worked table; the fitted temperature is
the one the labels were drawn with; a real run's classifier holds its kernel and bias divided
by that temperature and nothing else changed (against the same run with raw scores), once
even when the end of the run is repeated; the report and the TFLite export carry it. The
threshold for a target accuracy on a hand-made table, then from a run to predict's
"unknown" and into the export's metadata, where MediaPipe Tasks applies it."""

import json
import math

import numpy as np
import pytest
from helpers import run_cli, run_split
from PIL import Image

from cnnkeras._files import CHECKPOINTS
from cnnkeras._litert import TFLiteModel
from cnnkeras.data import Preprocessing, load_dataset
from cnnkeras.evaluate._calibration import (
    calibration,
    coverage_curve,
    fit_temperature,
    kept_at,
    scaled,
    threshold_for,
)
from cnnkeras.export import export_model
from cnnkeras.export._runtimes import KEEP_EVERY_SCORE, mediapipe_scores
from cnnkeras.predict import predict_files
from cnnkeras.saved import load_keras
from cnnkeras.train import TrainConfig, train
from cnnkeras.train._calibrate import RAW_FILE, calibrated_best, classifier


def test_ece_nll_and_brier_of_a_hand_made_table():
    scores = np.array([[0.9, 0.1], [0.65, 0.35], [0.2, 0.8], [0.7, 0.3]])
    labels = np.array([0, 1, 1, 0])  # right, wrong (top 0.65), right, right
    c = calibration(labels, scores)
    # top scores 0.9, 0.65, 0.8, 0.7 fall in four bins of 1/15: |1-0.9|, |0-0.65|, |1-0.8|, |1-0.7|
    assert c["ece"] == pytest.approx((0.1 + 0.65 + 0.2 + 0.3) / 4)
    assert c["nll"] == pytest.approx(-(math.log(0.9 * 0.35 * 0.8 * 0.7)) / 4)
    assert c["brier"] == pytest.approx(2 * (0.1**2 + 0.65**2 + 0.2**2 + 0.3**2) / 4)
    tally = [(b["count"], b["accuracy"]) for b in c["bins"]]
    assert tally == [(1, 0.0), (1, 1.0), (1, 1.0), (1, 1.0)]
    # two images in one bin: the bin's accuracy and mean top score, weighted by its share
    c = calibration(np.array([0, 1]), np.array([[0.9, 0.1], [0.92, 0.08]]))
    assert c["ece"] == pytest.approx(abs(0.5 - 0.91)) and len(c["bins"]) == 1


def test_the_threshold_keeps_the_most_confident_images_that_reach_the_target():
    labels = np.array([0, 0, 0, 0, 0, 0])
    top = [0.99, 0.95, 0.9, 0.9, 0.8, 0.6]  # right, right, wrong, right, right, wrong
    scores = np.array(
        [[t, 1 - t] if r else [1 - t, t] for t, r in zip(top, [1, 1, 0, 1, 1, 0], strict=True)]
    )
    coverage, accuracy, cut = coverage_curve(labels, scores)
    assert cut.tolist() == [0.99, 0.95, 0.9, 0.8, 0.6]  # the two 0.9s are kept or left together
    np.testing.assert_allclose(coverage, [1 / 6, 2 / 6, 4 / 6, 5 / 6, 1])
    np.testing.assert_allclose(accuracy, [1, 1, 3 / 4, 4 / 5, 4 / 6])
    assert threshold_for(labels, scores, 0.8) == pytest.approx(
        {"target": 0.8, "score": 0.8, "coverage": 5 / 6, "accuracy": 0.8}
    )
    assert threshold_for(labels, scores, 0.99)["score"] == 0.95
    assert kept_at(labels, scores, 0.85) == pytest.approx({"coverage": 4 / 6, "accuracy": 0.75})
    assert threshold_for(np.array([1]), np.array([[0.9, 0.1]]), 0.5) is None


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(temperature):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20_000, 5))
    p = scaled(logits, temperature)
    labels = (rng.random((len(p), 1)) > p.cumsum(axis=1)).sum(axis=1)
    fitted, reason = fit_temperature(logits, labels)
    assert fitted == pytest.approx(temperature, rel=0.05) and "validation NLL" in reason
    right = logits.argmax(axis=1)  # no error: nothing to fit, the scores stay
    assert fit_temperature(logits, right) == (1.0, "validation has no error to calibrate on")


def test_a_run_holds_its_temperature_in_the_classifier_and_nothing_else(tmp_path):
    options = dict(dataset="digits", image_size=16, epochs=3, seed=1)
    raw = train(TrainConfig(**options, scores="raw"), run_dir=tmp_path / "raw", verbose=0)
    run = tmp_path / "calibrated"
    result = train(TrainConfig(**options, target_accuracy=0.95), run_dir=run, verbose=0)
    record = json.loads((run / "config.json").read_text())
    t = record["calibration"]["temperature"]
    assert result["temperature"] == t and t != 1.0
    assert "calibration" not in json.loads((tmp_path / "raw" / "config.json").read_text())
    # the temperature is the one that fits validation's log-scores of the raw model
    before, after = load_keras(tmp_path / "raw" / "model.keras"), load_keras(run / "model.keras")
    x_val, y_val = run_split(run, "val")
    assert fit_temperature(np.log(before.predict(x_val, verbose=0)), y_val)[0] == pytest.approx(
        t, rel=1e-3
    )
    dense = classifier(after).name
    for b, a in zip(before.weights, after.weights, strict=True):
        if a.path.startswith(dense + "/"):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b) / t, rtol=1e-6)
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x_test, y_test = run_split(run, "test")
    p_raw, p = before.predict(x_test, verbose=0), after.predict(x_test, verbose=0)
    np.testing.assert_allclose(p, scaled(np.log(p_raw), t), atol=1e-5)
    assert (p.argmax(1) == p_raw.argmax(1)).all()  # it rescales, never reorders
    assert result["test_accuracy"] == raw["test_accuracy"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["calibration"]["ece"] == pytest.approx(calibration(y_test, p)["ece"], abs=1e-6)
    assert record["calibration"]["before"]["ece"] == pytest.approx(
        calibration(y_test, p_raw)["ece"], abs=1e-6
    )
    assert f"(temperature {t:.3f}, " in (run / "report.md").read_text()
    assert (run / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run / CHECKPOINTS).exists()

    # the end of the run repeated (killed after model.keras was calibrated): calibrated once
    (run / CHECKPOINTS).mkdir()
    (run / CHECKPOINTS / RAW_FILE).write_bytes((tmp_path / "raw" / "model.keras").read_bytes())
    data = load_dataset("digits", seed=1, record=json.loads((run / "splits.json").read_text()))
    prep = Preprocessing.from_dict(record["preprocessing"])
    _, again = calibrated_best(run, "calibrated", data, prep)
    assert again["temperature"] == pytest.approx(t, rel=1e-9)
    np.testing.assert_allclose(load_keras(run / "model.keras").predict(x_test, verbose=0), p)

    # "none of these": the threshold of 0.95 on validation's calibrated scores, applied by
    # predict --threshold auto, shown in the report
    found = record["score_threshold"]
    assert found == pytest.approx(threshold_for(y_val, after.predict(x_val, verbose=0), 0.95))
    cut = found["score"]
    at = kept_at(y_test, p, cut)
    assert f"here it keeps {at['coverage']:.1%} of the images" in (run / "report.md").read_text()
    order = np.argsort(p.max(1))
    files = []
    for i in (order[0], order[-1]):  # the least and the most confident test image
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(data.splits["test"].images[i][..., 0]).save(files[-1])
    unknown = [r["unknown"] for r in predict_files(run / "model.keras", files, threshold="auto")]
    assert unknown == [p[order[0]].max() < cut, p[order[-1]].max() < cut] == [True, False]

    # the export: the calibrated scores, the temperature and threshold recorded for apps,
    # ECE per variant; MediaPipe, given no threshold, takes the file's and drops what is below
    export = dict(variants=("float32", "int8"), int8_repair=False, check_runtimes=False, verbose=0)
    report = export_model(run / "model.keras", out=tmp_path / "x", **export)
    meta = json.loads((tmp_path / "x" / "preprocess.json").read_text())
    assert meta["temperature"] == t and meta["score_threshold"] == found
    path = tmp_path / "x" / "model_float32.tflite"
    lite = TFLiteModel(path).predict(np.repeat(x_test, 3, axis=-1))  # RGB in, luma inside
    np.testing.assert_allclose(lite, p, atol=1e-5)
    images = list(data.splits["test"].images)
    every, _ = mediapipe_scores(path, images, 10, score_threshold=KEEP_EVERY_SCORE)
    app, _ = mediapipe_scores(path, images, 10)  # as an app that sets no threshold
    confident = every.max(1) >= cut
    assert 0 < confident.sum() < len(images)
    assert not app[~confident].any()  # nothing reported below the threshold
    np.testing.assert_array_equal(app[confident].argmax(1), every[confident].argmax(1))
    # the int8 file's scores are the calibrated ones (not the raw ones), within its steps
    int8 = TFLiteModel(tmp_path / "x" / "model_int8.tflite").predict(np.repeat(x_test, 3, -1))
    assert np.abs(int8 - p).mean() < np.abs(int8 - p_raw).mean() / 2
    row = report["variants"]["float32"]
    assert row["ece"] == pytest.approx(calibration(y_test, lite)["ece"], abs=1e-4)
    assert f"divided by {t:.4g} inside" in (tmp_path / "x" / "model_card.md").read_text()

    # a run recorded before calibration was the default resumes with raw scores
    assert TrainConfig.from_record({"arch": "lenet5"}).scores == "raw"


def test_images_of_none_of_the_classes_are_measured(tmp_path):
    """Digits 0-4 known, 5-9 unknown, as 16x16 files (the model's size: no resize, so the
    model input is pixel / 255 and the test computes the scores itself)."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import roc_auc_score

    digits = load_digits()
    for kind, classes in (("known", range(5)), ("unknown", range(5, 10))):
        for c in classes:
            (tmp_path / kind / str(c)).mkdir(parents=True)
            for i in np.flatnonzero(digits.target == c)[:40]:
                pixels = np.round(digits.images[i] * 255 / 16).astype(np.uint8)
                image = Image.fromarray(pixels).resize((16, 16), Image.NEAREST)
                image.save(tmp_path / kind / str(c) / f"{i}.png")
    config = TrainConfig(
        dataset=f"folder:{tmp_path / 'known'}", image_size=16, epochs=4, target_accuracy=0.9
    )
    run = tmp_path / "run"
    train(config, run_dir=run, verbose=0)
    proc = run_cli(
        "evaluate", str(run / "model.keras"), "--unknown", f"folder:{tmp_path / 'unknown'}"
    )
    assert proc.returncode == 0, proc.stderr
    m = json.loads((run / "eval-known-test" / "metrics.json").read_text())["unknown"]
    model = load_keras(run / "model.keras")
    x_known, _ = run_split(run, "test")
    files = sorted((tmp_path / "unknown").rglob("*.png"))
    x_unknown = np.stack([np.asarray(Image.open(f))[..., None] / 255.0 for f in files])
    known = model.predict(x_known, verbose=0).max(1)
    unknown = model.predict(x_unknown.astype(np.float32), verbose=0).max(1)
    assert m["images"] == len(files) == 200
    truth = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    assert m["auroc"] == pytest.approx(roc_auc_score(truth, np.r_[known, unknown]), abs=1e-6)
    cut = json.loads((run / "config.json").read_text())["score_threshold"]["score"]
    assert m["threshold"] == cut
    assert m["accepted_at_threshold"] == pytest.approx((unknown >= cut).mean())
    assert m["known_kept_at_threshold"] == pytest.approx((known >= cut).mean())
    keep = np.sort(known)[int(np.floor(0.05 * (len(known) - 1)))]  # 95% of the known kept
    assert m["accepted_keeping_known"] == pytest.approx((unknown >= keep).mean())
    report = (run / "eval-known-test" / "report.md").read_text()
    assert f"AUROC {m['auroc']:.4f}" in report and "confident_unknowns.png" in report
    t = json.loads((run / "config.json").read_text())["calibration"]["temperature"]
    assert f"(temperature {t:.3f}, " in report  # evaluate says what training measured
