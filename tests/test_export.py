"""TFLite export of small trained MobileNets in every mode: the files, parity within the bars,
Flex detection, predict on generated images, wrong input, re-export, evaluate on .tflite."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli, run_split
from PIL import Image

from cnnkeras.cli import main
from cnnkeras.data import Preprocessing, preprocess_images
from cnnkeras.errors import UserError
from cnnkeras.evaluate import evaluate_model
from cnnkeras.export import VARIANTS, FlexOpsError, TFLiteModel, convert, export_model
from cnnkeras.models import create_model, list_models, model_info
from cnnkeras.train import TrainConfig, train

# a module-scoped fixture trains a model: pytest-xdist keeps the module on one worker
pytestmark = [pytest.mark.xdist_group("export"), pytest.mark.slow]


@pytest.fixture(scope="module")
def mobilenet_v2_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("v2")
    config = TrainConfig(
        arch="mobilenet_v2",
        dataset="mnist5k",
        image_size=32,
        epochs=6,
        lr=3e-3,
        model_options={"alpha": 0.35},
    )
    train(config, run_dir=out / "run", verbose=0)
    report = export_model(
        out / "run" / "model.keras", variants=VARIANTS, out=out / "tflite", verbose=0
    )
    return out, report


def test_v2_export_files(mobilenet_v2_run):
    out, _ = mobilenet_v2_run
    folder = out / "tflite"
    for variant in VARIANTS:
        assert (folder / f"model_{variant}.tflite").stat().st_size > 0
    for name in ("labels.txt", "preprocess.json", "model_card.md", "parity.json"):
        assert (folder / name).is_file()
    assert (folder / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    meta = json.loads((folder / "preprocess.json").read_text())
    prep = meta["preprocessing"]  # the record schema train writes too
    # a grey model exported for phones takes RGB and converts it itself
    assert (prep["height"], prep["width"], prep["channels"]) == (32, 32, 3)
    assert meta["trained_channels"] == 1 and prep["resize"] == "phone"
    assert prep["scale"] == pytest.approx(1 / 255) and meta["dataset"] == "mnist5k"
    run_record = json.loads((out / "run" / "config.json").read_text())
    shared = ("format", "class_names", "num_classes", "dataset", "seed")
    assert {k: meta[k] for k in shared} == {k: run_record[k] for k in shared}
    assert {**run_record["preprocessing"], "channels": 3, "color_order": "RGB"} == prep
    assert (meta["kind"], run_record["kind"]) == ("export", "run")
    int8 = meta["variants"]["int8"]
    assert int8["input"]["dtype"] == "uint8" and int8["output"]["dtype"] == "uint8"
    assert int8["input"]["scale"] > 0
    card = (folder / "model_card.md").read_text()
    assert "| int8 |" in card and "zero point" in card
    golden = json.loads((folder / "golden" / "expected.json").read_text())["cases"]
    assert len(golden) == 5 and set(VARIANTS) <= set(golden[0]["scores"])
    # an app's self-check: each golden PNG through the recorded preprocessing gives the scores
    runner = TFLiteModel(folder / "model_float32.tflite")
    recorded = Preprocessing.from_dict(prep)
    for key in ("", "input_size_"):
        pixels = np.asarray(Image.open(folder / golden[0][f"{key}image"]))
        scores = runner.predict(preprocess_images([pixels], recorded))
        np.testing.assert_allclose(scores[0], golden[0][f"{key}scores"]["float32"], atol=1e-5)


def test_v2_parity_within_the_bars(mobilenet_v2_run):
    _, report = mobilenet_v2_run
    v = report["variants"]
    assert report["keras_accuracy"] > 0.8  # a trained model, not noise
    assert v["float32"]["agreement"] >= 0.999
    assert v["float16"]["agreement"] >= 0.99 and v["dynamic"]["agreement"] >= 0.99
    assert report["keras_accuracy"] - v["int8"]["accuracy"] <= 0.01
    assert report["warnings"] == []
    for row in v.values():
        assert row["median_ms"] > 0 and row["p90_ms"] >= row["median_ms"]


def test_int8_file_is_under_30_percent_at_the_canonical_size():
    model = create_model("mobilenet_v2")  # 224x224x3, 1000 classes

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(4):
            yield [rng.uniform(0, 1, (1, 224, 224, 3)).astype("float32")]

    ratio = len(convert(model, "int8", representative)) / len(convert(model, "float32"))
    assert ratio <= 0.30


def test_v1_export_all_modes(tmp_path, monkeypatch):
    from cnnkeras.export import _export

    calibrated = []  # images in each calibration sample the converter is given
    sample = _export.representative_sample

    def counted(*args, **kwargs):
        generate = sample(*args, **kwargs)
        calibrated.append(sum(1 for _ in generate()))
        return generate

    monkeypatch.setattr(_export, "representative_sample", counted)
    config = TrainConfig(
        arch="mobilenet_v1",
        dataset="digits",
        image_size=32,
        epochs=3,
        model_options={"alpha": 0.25},
    )
    train(config, run_dir=tmp_path / "run", verbose=0)
    report = export_model(
        tmp_path / "run" / "model.keras",
        variants=VARIANTS,
        out=tmp_path / "tflite",
        int_io="int8",
        samples=100,
        verbose=0,
    )
    assert calibrated and set(calibrated) == {100}  # `samples`: 10 of each of the 10 classes
    assert set(VARIANTS) <= set(report["variants"])  # and int8_mixed, where int8 was repaired
    assert report["variants"]["float32"]["agreement"] >= 0.999
    meta = json.loads((tmp_path / "tflite" / "preprocess.json").read_text())
    assert meta["variants"]["int8"]["input"]["dtype"] == "int8"
    # int8 in and out, worked by hand with the file's own scales: pixels of 0..1 in steps of
    # 1/255 are int8 -128..127 (RGB, as apps give; a grey model converts inside), and the
    # dequantized scores are the Keras model's
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / "tflite" / "model_int8.tflite"))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == out["dtype"] == np.int8
    in_scale, in_zero = inp["quantization"]
    assert in_zero == -128 and in_scale == pytest.approx(1 / 255, rel=1e-3)
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    x, _ = run_split(tmp_path / "run", "test")
    keras_scores = model.predict(x, verbose=0)
    scale, zero = out["quantization"]
    by_hand = []
    for image in x:
        rgb = np.repeat(image, 3, axis=-1)
        q = np.clip(np.round(rgb / in_scale + in_zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[None])
        interpreter.invoke()
        by_hand.append((interpreter.get_tensor(out["index"])[0].astype(np.float32) - zero) * scale)
    agreement = float(np.mean(np.argmax(by_hand, 1) == keras_scores.argmax(1)))
    int8_row = report["variants"]["int8"]
    assert agreement == pytest.approx(int8_row["agreement"], abs=1.01 / len(x))
    assert np.abs(np.array(by_hand) - keras_scores).max() <= int8_row["max_abs_diff"] + 0.02
    int8 = evaluate_model(tmp_path / "tflite" / "model_int8.tflite", out=tmp_path / "ev")
    assert report["variants"]["int8"]["accuracy"] == pytest.approx(int8["accuracy"], abs=1e-9)


class Cumprod(keras.layers.Layer):
    """A layer whose op has no builtin TFLite kernel."""

    def call(self, x):
        return tf.math.cumprod(x, axis=-1)


def test_flex_ops_are_named_and_refused():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, Cumprod()(inputs))
    with pytest.raises(FlexOpsError, match="Cumprod") as err:
        convert(model, "float32")
    assert err.value.ops == ["Cumprod"]


def test_wrong_input_is_rejected(mobilenet_v2_run):
    out, _ = mobilenet_v2_run
    runner = TFLiteModel(out / "tflite" / "model_int8.tflite")
    with pytest.raises(UserError, match="does not fit"):
        runner.predict(np.zeros((1, 28, 28, 3), np.float32))
    with pytest.raises(UserError, match="takes float model input"):
        runner.predict(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(UserError, match="dtype float32 does not match"):
        runner.invoke_raw(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(UserError, match="does not match the model's"):
        runner.invoke_raw(np.zeros((2, 32, 32, 3), np.uint8))


def test_predict_generated_images_with_a_corrupt_one(mobilenet_v2_run, tmp_path, capsys):
    out, _ = mobilenet_v2_run
    from cnnkeras.data import load_dataset

    test = load_dataset("mnist5k").splits["test"]
    paths = []
    for i in range(3):  # any size and colour mode
        image = Image.fromarray(test.images[i][..., 0]).resize((40 + 10 * i, 40))
        image = image.convert("RGB") if i == 1 else image
        paths.append(str(tmp_path / f"{i}.png"))
        image.save(paths[-1])
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    paths.insert(1, str(tmp_path / "bad.png"))
    paths.append(str(tmp_path / "missing.jpg"))
    for model in ("tflite/model_int8.tflite", "run/model.keras"):
        assert main(["predict", str(out / model), *paths, "--json", "--top-k", "2"]) == 1
        results = json.loads(capsys.readouterr().out)["results"]
        assert [("error" in r) for r in results] == [False, True, False, False, True]
        assert "not a readable image" in results[1]["error"]
        assert "no such file" in results[4]["error"]
        assert len(results[0]["top"]) == 2
        answered = [r for r in results if "top" in r]
        correct = sum(r["top"][0]["label"] == str(test.labels[i]) for i, r in enumerate(answered))
        assert correct >= 2  # a trained model reads resized, recoloured digits


def test_records_written_before_the_schema_still_load(mobilenet_v2_run, tmp_path):
    # an export's preprocess.json once held the preprocessing at its top level, and a run's
    # config.json had no format or kind: both still load, to the same preprocessing
    import shutil

    from cnnkeras.saved import Predictor, load_run_model

    out, _ = mobilenet_v2_run
    bundle = shutil.copytree(out / "tflite", tmp_path / "old_export")
    meta = json.loads((bundle / "preprocess.json").read_text())
    flat = {**meta.pop("preprocessing"), **meta}
    for key in ("format", "kind", "class_names", "num_classes", "source"):
        flat.pop(key)
    (bundle / "preprocess.json").write_text(json.dumps(flat))
    old, new = Predictor(bundle / "model_int8.tflite"), Predictor(out / "tflite/model_int8.tflite")
    assert old.prep == new.prep and old.dataset == new.dataset == "mnist5k"
    x = np.random.default_rng(0).random((2, 32, 32, 3), np.float32)
    np.testing.assert_array_equal(old(x), new(x))
    run = shutil.copytree(out / "run", tmp_path / "old_run")
    record = json.loads((run / "config.json").read_text())
    del record["format"], record["kind"]
    (run / "config.json").write_text(json.dumps(record))
    assert load_run_model(run / "model.keras").prep == load_run_model(out / "run/model.keras").prep


def test_reexport_and_evaluate_tflite(mobilenet_v2_run, tmp_path):
    out, first = mobilenet_v2_run
    report = export_model(
        out / "run" / "model.keras",
        variants=("float32", "dynamic"),
        out=tmp_path / "again",
        verbose=0,
    )
    assert report["variants"]["dynamic"]["accuracy"] == first["variants"]["dynamic"]["accuracy"]
    metrics = evaluate_model(out / "tflite" / "model_int8.tflite", "mnist5k", out=tmp_path / "eval")
    assert metrics["accuracy"] == pytest.approx(first["variants"]["int8"]["accuracy"])
    assert (tmp_path / "eval" / "report.html").is_file()
    # no gradients in a .tflite file: top losses without Grad-CAM, and the report says why
    assert len(metrics["top_losses"]) == 16 and "no gradients" in metrics["top_losses_note"]
    assert "no gradients" in (tmp_path / "eval" / "report.html").read_text()


def test_equal_scores_rank_in_class_order():
    """An int8 file's scores tie often: predict ranks them as argmax and MediaPipe do."""
    from cnnkeras.predict import _top

    scores = np.array([0.0156, 0.2344, 0.0039, 0.3711, 0.0078, 0.3711], np.float32)
    names = ["dahlia", "flag", "leaves", "pagoda", "sky", "trees"]
    assert [r["label"] for r in _top(scores, names, 3)] == ["pagoda", "trees", "flag"]


def test_export_cli_errors(tmp_path):
    proc = run_cli("export", str(tmp_path / "x.keras"))
    assert proc.returncode == 2 and proc.stderr.strip().endswith("does not exist")
    lenet = create_model("lenet5")
    lenet.save(tmp_path / "lenet.keras")
    with pytest.raises(UserError, match="int8 needs calibration images"):
        export_model(tmp_path / "lenet.keras", variants=("int8",), out=tmp_path / "o")
    report = export_model(tmp_path / "lenet.keras", out=tmp_path / "o", verbose=0)
    assert "agreement" not in report["variants"]["float32"]  # no dataset, no parity claims


def test_bench_infer_json(mobilenet_v2_run, capsys):
    out, _ = mobilenet_v2_run
    path = out / "tflite" / "model_float32.tflite"
    assert main(["bench", "infer", str(path), "--runs", "20", "--threads", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["images_per_sec"] == pytest.approx(1000 / r["median_ms"])
    assert r["runtime"].startswith("LiteRT")


FAMILIES = sorted({model_info(name).family: name for name in reversed(list_models())}.values())


@pytest.mark.parametrize("name", FAMILIES)
def test_float32_export_of_every_family(name, rng):
    """One model per registered family (the first registered): float32 converts with builtin
    ops only and gives the Keras model's outputs."""
    size = max(model_info(name).min_size, 32)
    model = create_model(name, input_shape=(size, size, 3), num_classes=4)
    runner = TFLiteModel(convert(model, "float32"))
    x = rng.uniform(0, 1, (2, size, size, 3)).astype("float32")
    np.testing.assert_allclose(runner.predict(x), model(x, training=False), atol=1e-4)


def test_quantization_words():
    from cnnkeras.export import variants_for

    assert variants_for("none") == ("float32",) and variants_for("all") == VARIANTS
    assert variants_for("int8") == ("float32", "int8")
    with pytest.raises(UserError, match="`quantize` must be none, all or one of"):
        variants_for("int4")
