"""Exports judged by the runtimes apps use: MediaPipe Tasks' ImageClassifier (Android, iOS and
web apps: it reads the TFLite Metadata, resizes the frame itself and names the classes),
LiteRT's CompiledModel and the browser app (LiteRT.js in headless Chromium), on the main job's
grey LeNet-5 and on a colour MobileNet v2 trained on real photos, some of them larger than
1,000 pixels."""

import contextlib
import functools
import hashlib
import io
import json
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import browse, run_cli, serving
from PIL import Image

from cnnkeras.data import Preprocessing
from cnnkeras.data._pipeline import resize_image
from cnnkeras.export import VARIANTS, TFLiteModel, convert, export_model
from cnnkeras.export._metadata import ClassifierMetadata, metadata_bytes, populate
from cnnkeras.export._runtimes import CompiledModelRunner, mediapipe_scores
from cnnkeras.predict import predict_files
from cnnkeras.train import TrainConfig, train

pytestmark = [pytest.mark.xdist_group("phone"), pytest.mark.slow]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """The main job's model (grey LeNet-5 on mnist5k, fewer epochs), exported in every variant
    for phones (RGB input)."""
    out = tmp_path_factory.mktemp("lenet")
    train(TrainConfig(epochs=3), run_dir=out / "run", verbose=0)
    report = export_model(
        out / "run" / "model.keras", variants="all", out=out / "tfl", web=True, verbose=0
    )
    return out / "tfl", report


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A colour MobileNet v2 trained on real photos (two a class at 1,000-1,400 pixels)."""
    from photos import make_photo_folder

    out = tmp_path_factory.mktemp("photos")
    root = make_photo_folder(out / "photos", per_class=45, large=2)
    config = TrainConfig(
        arch="mobilenet_v2",
        dataset=f"folder:{root}",
        image_size=48,
        epochs=12,
        model_options={"alpha": 0.35},
    )
    train(config, run_dir=out / "run", verbose=0)
    report = export_model(out / "run" / "model.keras", variants="all", out=out / "tfl", verbose=0)
    return out / "tfl", report


def _metadata(path):
    """The file's ModelMetadata, read with MediaPipe's own generated reader."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema
    from tensorflow.lite.python import schema_py_generated as model_schema

    blob = path.read_bytes()
    model = model_schema.Model.GetRootAs(blob, 0)
    entries = [model.Metadata(i) for i in range(model.MetadataLength())]
    (entry,) = [m for m in entries if m.Name() == b"TFLITE_METADATA"]
    data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
    return schema, schema.ModelMetadata.GetRootAs(data, 0), blob


def test_metadata_as_mediapipe_reads_it(lenet):
    folder, report = lenet
    schema, meta, blob = _metadata(folder / "model_float32.tflite")
    assert meta.Name() == b"run" and meta.Version() == b"run"  # the run folder's name
    description = meta.Description().decode()
    assert "lenet5" in description and "mnist5k" in description
    assert f"test accuracy {report['keras_accuracy']:.4f}" in description
    assert (meta.Author(), meta.License()) == (b"cnnkeras", b"unspecified")
    image = meta.SubgraphMetadata(0).InputTensorMetadata(0)
    props = schema.ImageProperties()
    props.Init(image.Content().ContentProperties().Bytes, image.Content().ContentProperties().Pos)
    assert props.ColorSpace() == schema.ColorSpaceType.RGB
    unit = image.ProcessUnits(0)
    assert unit.OptionsType() == schema.ProcessUnitOptions.NormalizationOptions
    norm = schema.NormalizationOptions()
    norm.Init(unit.Options().Bytes, unit.Options().Pos)
    # (pixel - mean) / std is the recorded pixel * scale + offset: 1/255 and 0
    assert (norm.MeanAsNumpy().tolist(), norm.StdAsNumpy().tolist()) == ([0.0], [255.0])
    labels = meta.SubgraphMetadata(0).OutputTensorMetadata(0).AssociatedFiles(0)
    assert labels.Name() == b"labels.txt"
    assert labels.Type() == schema.AssociatedFileType.TENSOR_AXIS_LABELS
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.read("labels.txt") == (folder / "labels.txt").read_bytes()


def test_metadata_leaves_the_graph_alone(rng):
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3)])
    model.add(keras.layers.GlobalAveragePooling2D())
    model.add(keras.layers.Softmax())
    bare = convert(model, "float32")
    info = ClassifierMetadata("m", "d", "1", "a", "l", mean=0.0, std=255.0)
    once = populate(bare, metadata_bytes(info), {"labels.txt": b"a\nb\nc\nd\n"})
    twice = populate(once, metadata_bytes(info), {"labels.txt": b"a\nb\nc\nd\n"})
    x = rng.random((3, 16, 16, 3), np.float32)
    expected = TFLiteModel(bare).predict(x)
    for blob in (once, twice):
        np.testing.assert_array_equal(TFLiteModel(blob).predict(x), expected)
    assert len(twice) == len(once)  # populated again: the old metadata and archive replaced


@pytest.mark.parametrize("side", [8, 64])
def test_the_pipeline_resizes_as_mediapipe_does(side, tmp_path, rng):
    """A 'model' whose scores are its input pixels shows what MediaPipe fed it: the phone
    resize gives the same pixels, bit for bit, from frames smaller and larger than the input,
    of odd sides (whose samples fall half-way between two of OpenCV's 1/32 positions at 64)."""
    flat = keras.Sequential([keras.Input((side, side, 3)), keras.layers.Flatten()])
    info = ClassifierMetadata("probe", "d", "1", "a", "l", mean=0.0, std=1.0, input_max=255.0)
    labels = "".join(f"{i}\n" for i in range(side * side * 3)).encode()
    path = tmp_path / "probe.tflite"
    path.write_bytes(
        populate(convert(flat, "float32"), metadata_bytes(info), {"labels.txt": labels})
    )
    shapes = [(side, side, 3), (5, 6, 3), (63, 89, 3), (45, 109, 3), (1011, 1400, 3), (9, 300, 3)]
    images = [rng.integers(0, 256, shape, np.uint8) for shape in shapes]
    seen, _ = mediapipe_scores(path, images, side * side * 3)
    for image, fed in zip(images, seen, strict=True):
        fed = fed.reshape(side, side, 3)
        for resize, same in (("phone", True), ("antialias", image.shape[0] == side)):
            prep = Preprocessing(side, side, 3, resize=resize)
            ours = resize_image(tf.constant(image, tf.float32), prep).numpy()
            assert np.array_equal(ours, fed) == same, (image.shape, resize)


def test_jpegs_decode_as_platform_decoders_do(tmp_path):
    """libjpeg's accurate IDCT, as PIL, OpenCV and phones decode; TensorFlow's default (the
    fast IDCT) is a few grey levels off."""
    from photos import make_photo_folder

    from cnnkeras.data import load_dataset
    from cnnkeras.data._pipeline import raw_images

    root = make_photo_folder(tmp_path / "photos", per_class=2, large=1)
    split = load_dataset(f"folder:{root}", seed=0).splits["train"]
    for path, pixels in zip(split.paths, raw_images(split), strict=True):
        with Image.open(path) as image:
            np.testing.assert_array_equal(pixels, np.asarray(image.convert("RGB")), err_msg=path)
        fast = tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy()
        assert not np.array_equal(fast, pixels)  # what the pipeline would see otherwise


def _golden_checks(folder, report):
    expected = json.loads((folder / "golden" / "expected.json").read_text())["cases"]
    names = (folder / "labels.txt").read_text().split()
    files = [v for v in report["variants"] if (folder / f"model_{v}.tflite").is_file()]
    for variant in files:
        path = folder / f"model_{variant}.tflite"
        originals = [np.asarray(Image.open(folder / c["image"]).convert("RGB")) for c in expected]
        fitted = [
            np.asarray(Image.open(folder / c["input_size_image"]).convert("RGB")) for c in expected
        ]
        scores, categories = mediapipe_scores(path, originals + fitted, len(names))
        assert categories == names, variant  # classes named by the labels inside the file
        ours = predict_files(path, [str(folder / c["image"]) for c in expected], top_k=1)
        assert [names[i] for i in scores[: len(expected)].argmax(1)] == [
            r["top"][0]["label"] for r in ours
        ], variant
        at_size = np.array([c["input_size_scores"][variant] for c in expected])
        if variant in ("int8",):
            q = json.loads((folder / "preprocess.json").read_text())["variants"][variant]
            tolerance = q["output"]["scale"] * 1.01  # one output quantization step
        else:
            tolerance = 1e-3
        np.testing.assert_allclose(
            scores[len(expected) :], at_size, atol=tolerance, err_msg=variant
        )


@pytest.mark.parametrize("export", ["lenet", "photos"])
def test_every_variant_runs_in_mediapipe_and_compiled_model(export, request):
    folder, report = request.getfixturevalue(export)
    assert set(VARIANTS) <= set(report["variants"])
    _golden_checks(folder, report)
    for variant, row in report["variants"].items():
        assert row["compiled_model_max_diff"] <= 1e-6, variant
        assert row["phone_labels"], variant
    # the recorded check is real: CompiledModel on the file itself
    path = folder / "model_float32.tflite"
    x = np.random.default_rng(0).random((2, *TFLiteModel(path).input_shape), np.float32)
    compiled = CompiledModelRunner(path.read_bytes())
    np.testing.assert_allclose(compiled.predict(x), TFLiteModel(path).predict(x), atol=1e-6)
    compiled.close()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def _static_host(folder):
    """``folder`` on a plain static file server (Python's), as any web host would serve it."""
    handler = functools.partial(_QuietFiles, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


KEYS = ("", "input_size_")  # golden images: as stored, and at the model's input size


def _browser_checks(url, folder, variants):
    """The page self-tests every variant: each golden image (as stored, resized by the page,
    and at the input size) gets the Python runtime's top class and scores within 1e-4 (one
    quantization step for an integer output; 1e-2 for a dynamic-range file, which quantizes
    activations as it runs), checked here from the scores the page computed."""
    expected = json.loads((folder / "golden" / "expected.json").read_text())["cases"]
    record = json.loads((folder / "preprocess.json").read_text())
    photos = [str(folder / c["image"]) for c in expected]
    page = browse(url, variants=list(variants), photos=photos)
    assert page["state"] == "ready" and page["error"] is None, page
    for variant in variants:
        run = page["variants"][variant]
        output = record["variants"][variant]["output"]
        tolerance = 1e-2 if variant == "dynamic" else 1e-4
        if output["dtype"] != "float32":
            tolerance = output["scale"] * 1.01
        assert len(run["rows"]) == 2 * len(expected), variant
        python = {c[f"{k}image"]: c[f"{k}scores"][variant] for c in expected for k in KEYS}
        for row in run["rows"]:
            want = np.array(python[row["image"]])
            assert np.argmax(row["scores"]) == np.argmax(want), (variant, row["image"])
            assert np.abs(np.array(row["scores"]) - want).max() <= tolerance, (variant, row)
        assert run["shown"] == ["pass"] * len(run["rows"]), variant
    # photos chosen in the picker: one card each, named by the top class of the last variant
    names = (folder / "labels.txt").read_text().split("\n")
    last = [names[int(np.argmax(c["scores"][variants[-1]]))] for c in expected]
    assert page["cards"] == last[::-1]  # newest first
    return page


@pytest.mark.parametrize("export", ["lenet", "photos"])
def test_the_browser_app_gives_the_python_scores(export, request):
    """In a real headless Chromium: the grey LeNet-5's folder, written by ``export --web``, on
    a plain static server; the colour MobileNet v2 (photos of 1,000+ pixels, resized in the
    page) through ``cnnkeras serve``."""
    folder, report = request.getfixturevalue(export)
    variants = [v for v in report["variants"] if (folder / f"model_{v}.tflite").is_file()]
    if export == "lenet":
        assert (folder / "index.html").is_file() and (folder / "runtime" / "NOTICE.txt").is_file()
        card = (folder / "model_card.md").read_text()  # what to do on a phone, step by step
        assert f"cnnkeras serve {folder} --bind 0.0.0.0" in card
        assert "this folder is the browser app" in card
        with _static_host(folder) as url:
            _browser_checks(url, folder, variants)
    else:
        assert not (folder / "index.html").exists()  # served from the package
        with serving(str(folder)) as (url, _):
            _browser_checks(url, folder, variants)


def test_the_grey_model_takes_rgb_and_keeps_its_answers(lenet):
    folder, report = lenet
    meta = json.loads((folder / "preprocess.json").read_text())
    assert meta["preprocessing"]["channels"] == 3 and meta["trained_channels"] == 1
    assert TFLiteModel(folder / "model_float32.tflite").input_shape == (32, 32, 3)
    assert report["variants"]["float32"]["agreement"] >= 0.999
    assert report["keras_accuracy"] - report["variants"]["int8"]["accuracy"] <= 0.01
    int8_in = meta["variants"]["int8"]["input"]  # the pixel itself, as MediaPipe feeds it
    assert int8_in["zero_point"] == 0 and int8_in["scale"] == pytest.approx(1 / 255, rel=1e-6)
    assert report["warnings"] == []


def test_a_phone_sees_the_pipelines_accuracy_on_real_photos(photos):
    """MediaPipe resizes the stored photos itself: with the pipeline's phone resize (its
    pixels) and accurate JPEG decoding (the decoders' pixels), float32 and int8 give the same
    answers in MediaPipe as on the pipeline (trained and evaluated with the area-averaging
    resize, 10-15% of photos differed: BENCHMARKS.md). One photo of slack: a frame size where
    OpenCV's transform matrix is inexact can flip a half-way sample."""
    folder, report = photos
    assert report["keras_accuracy"] >= 0.5  # a trained model, not noise (chance: 0.17)
    n = report["test_images"]
    for variant in ("float32", "int8"):
        row = report["variants"][variant]
        assert row["phone_agreement"] >= 1 - 1.5 / n, (variant, row)
        assert abs(row["phone_accuracy"] - row["accuracy"]) <= 1 / n + 1e-9, (variant, row)
    card = (folder / "model_card.md").read_text()
    assert "accuracy in MediaPipe" in card


def _outlier_run(tmp_path):
    """A trained LeNet-5 (digits) with a hidden channel of huge activations after its first
    convolution: the same function in float, but int8's per-tensor range of that layer then
    zeroes every other channel (the failure mode of outlier activations)."""
    import shutil

    run = tmp_path / "run"
    train(TrainConfig(dataset="digits", epochs=4), run_dir=run, verbose=0)
    model = keras.saving.load_model(run / "model.keras")
    inputs = keras.Input(model.input_shape[1:])
    x, done = inputs, False
    for layer in model.layers[1:]:
        x = layer(x)
        if not done and isinstance(layer, keras.layers.Conv2D):
            c = x.shape[-1]
            spread = keras.layers.Conv2D(c + 1, 1, name="outlier_in")
            merge = keras.layers.Conv2D(c, 1, name="outlier_out")
            x, done = merge(spread(x)), True
            w = np.zeros((1, 1, c, c + 1), np.float32)
            w[0, 0, :, :c], w[0, 0, :, c] = np.eye(c), 1e4
            spread.set_weights([w, np.zeros(c + 1, np.float32)])
            back = np.zeros((1, 1, c + 1, c), np.float32)
            back[0, 0, :c, :] = np.eye(c)  # the huge channel is dropped again
            merge.set_weights([back, np.zeros(c, np.float32)])
    bad = tmp_path / "bad"
    bad.mkdir()
    keras.Model(inputs, x).save(bad / "model.keras")
    for name in ("config.json", "labels.txt", "splits.json"):
        shutil.copy(run / name, bad / name)
    return bad / "model.keras"


def test_int8_that_misses_its_bar_is_repaired(tmp_path):
    model = _outlier_run(tmp_path)
    report = export_model(model, variants="int8", out=tmp_path / "tfl", verbose=0)
    keras_accuracy, v = report["keras_accuracy"], report["variants"]
    assert keras_accuracy - v["int8"]["accuracy"] > 0.3  # int8 is broken
    assert keras_accuracy - v["int8_mixed"]["accuracy"] <= 0.01  # the repair is within the bar
    kept = report["int8_repair"]["kept_float"]
    assert len(kept) <= 3 and any("outlier_in" in name for name in kept)
    assert v["int8_mixed"]["bytes"] < 0.5 * v["float32"]["bytes"]  # still an int8 file
    assert abs(v["int8_mixed"]["phone_accuracy"] - v["int8_mixed"]["accuracy"]) <= 0.01
    assert (
        "int8_mixed.tflite keeps" in report["warnings"][0]
        and "test split" not in report["warnings"][0]
    )
    off = export_model(model, variants="int8", out=tmp_path / "off", int8_repair=False, verbose=0)
    assert (
        "int8_mixed" not in off["variants"]
        and not (tmp_path / "off/model_int8_mixed.tflite").exists()
    )


def _tree(folder):
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_refused_exports_leave_the_folder_as_it_was(lenet, tmp_path):
    folder, _ = lenet
    model = folder.parent / "run" / "model.keras"
    before = _tree(folder)
    cases = [
        (["--input", "grey"], "--input"),
        (["--author", "two\nlines"], "--author"),
        (["--license", "x" * 201], "--license"),
    ]
    for args, flag in cases:
        proc = run_cli("export", str(model), "--out", str(folder), *args)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and flag in proc.stderr, proc.stderr
    # a model whose output is not one vector of class scores
    dense = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    dense.save(tmp_path / "maps.keras")
    proc = run_cli("export", str(tmp_path / "maps.keras"), "--out", str(folder))
    assert proc.returncode == 2 and "not one vector of class scores" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _tree(folder) == before
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tfl.")]  # no staging


def test_as_trained_keeps_a_grey_input(lenet, tmp_path):
    folder, _ = lenet
    export_model(
        folder.parent / "run" / "model.keras", input="as-trained", out=tmp_path / "g", verbose=0
    )
    assert TFLiteModel(tmp_path / "g" / "model_float32.tflite").input_shape == (32, 32, 1)
    schema, meta, _ = _metadata(tmp_path / "g" / "model_float32.tflite")
    image = meta.SubgraphMetadata(0).InputTensorMetadata(0)
    props = schema.ImageProperties()
    props.Init(image.Content().ContentProperties().Bytes, image.Content().ContentProperties().Pos)
    assert props.ColorSpace() == schema.ColorSpaceType.GRAYSCALE
    with serving(str(tmp_path / "g")) as (url, _):  # the page's RGB -> grey, as the pipeline's
        _browser_checks(url, tmp_path / "g", ["float32"])


def test_a_record_without_resize_keeps_the_old_resize():
    old = {"height": 8, "width": 8, "channels": 3, "scale": 1 / 255, "offset": 0.0}
    assert Preprocessing.from_dict(old).resize == "antialias"
    assert Preprocessing.from_dict({**old, "resize": "phone"}).resize == "phone"
    assert TrainConfig.from_record({"arch": "lenet5"}).resize == "antialias"
    assert TrainConfig.from_record({"arch": "lenet5", "resize": "phone"}).resize == "phone"
    assert TrainConfig().resize == TrainConfig.from_dict({}).resize == "phone"
