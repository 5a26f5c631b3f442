"""Looking inside trained CNNs: Grad-CAM finds the evidence, receptive fields match the
hand-worked values, feature maps have the shapes `summary` reports, every family runs, and
`cnnkeras inspect` writes its files for real photos and refuses bad input in one line."""

import json

import keras
import numpy as np
import pytest
from helpers import one_per_builder, run_cli, run_split
from PIL import Image

from cnnkeras import explain, interpret
from cnnkeras.cli import main
from cnnkeras.data import Preprocessing, preprocess_images
from cnnkeras.errors import UserError
from cnnkeras.models import create_model, layer_table, model_info
from cnnkeras.train import TrainConfig, train

# a module-scoped fixture trains a model: pytest-xdist keeps the module on one worker
pytestmark = pytest.mark.xdist_group("interpret")


def patch_images(rng, n: int):
    """Noise with one bright 6x6 patch; the class is the half it lies in (0 left, 1 right)."""
    x = rng.uniform(0, 0.3, (n, 32, 32, 1)).astype("float32")
    y = rng.integers(0, 2, n)
    for i in range(n):
        row, col = rng.integers(0, 26), rng.integers(0, 10) + 16 * y[i]
        x[i, row : row + 6, col : col + 6] = 1.0
    return x, y


def test_grad_cam_lies_on_the_evidence():
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    x, y = patch_images(rng, 600)
    x_test, y_test = patch_images(rng, 60)
    model = create_model("lenet5", input_shape=(32, 32, 1), num_classes=2)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert model.evaluate(x_test, y_test, verbose=0)[1] >= 0.95
    on_side = []
    for image, label in zip(x_test, y_test, strict=True):
        cam = interpret.grad_cam(model, image)
        assert cam.shape == (32, 32) and cam.min() >= 0 and cam.max() == pytest.approx(1)
        on_side.append((cam[:, 16:].sum() > cam[:, :16].sum()) == bool(label))
    assert np.mean(on_side) >= 0.8
    # the map of the other class points elsewhere: the gradient, not the image, decides
    flipped = [
        interpret.grad_cam(model, image, class_index=1 - label)[:, 16:].sum()
        > interpret.grad_cam(model, image, class_index=1 - label)[:, :16].sum()
        for image, label in zip(x_test[:20], y_test[:20], strict=True)
    ]
    assert np.mean(np.array(flipped) == y_test[:20].astype(bool)) < 0.8


def test_receptive_fields_by_hand():
    lenet = interpret.receptive_fields(create_model("lenet5"))
    # c1 5x5: 5; s2 2x2/2: 6 (jump 2); c3 5x5: 6 + 4*2 = 14; s4 2x2/2: 16
    assert (lenet["c1_conv"], lenet["s2"], lenet["c3_conv"], lenet["s4"]) == (5, 6, 14, 16)
    vgg = interpret.receptive_fields(create_model("vgg16", input_shape=(32, 32, 3)))
    # two 3x3 convs see 5 pixels, as the stack argument says; the pool then doubles the jump
    stack = [row["receptive_field"] for row in explain.receptive_field(3, 2)["rows"]]
    assert [vgg["block1_conv1"], vgg["block1_conv2"]] == stack == [3, 5]
    assert (vgg["block1_pool"], vgg["block2_conv1"], vgg["block2_conv2"]) == (6, 10, 14)


def test_feature_maps_have_the_shapes_summary_reports():
    model = create_model("resnet18", input_shape=(64, 64, 3), num_classes=3)
    maps = interpret.feature_maps(model, np.random.default_rng(0).random((64, 64, 3)))
    shapes = {r["name"]: r["output_shape"] for r in layer_table(model)}
    assert len(maps) >= 4  # one per stage
    for name, fmap in maps.items():
        assert list(fmap.shape) == shapes[name]
    sides = [m.shape[0] for m in maps.values()]
    depths = [m.shape[-1] for m in maps.values()]
    assert sides == sorted(sides, reverse=True) and depths[-1] > depths[0]  # shrink, deepen


@pytest.mark.slow
@pytest.mark.parametrize("name", one_per_builder())
def test_every_family_grad_cam_and_feature_maps(name):
    size = max(64, model_info(name).min_size)
    model = create_model(name, input_shape=(size, size, 3), num_classes=3)
    image = np.random.default_rng(0).random((size, size, 3)).astype("float32")
    layer = interpret.default_cam_layer(model)
    cam = interpret.grad_cam(model, image)
    assert cam.shape == (size, size) and np.isfinite(cam).all()
    assert min(model.get_layer(layer).output.shape[1:3]) >= 2
    maps = interpret.feature_maps(model, image)
    assert maps and all(m.ndim == 3 for m in maps.values())
    assert interpret.first_conv_filters(model).shape[0] > 1


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect")
    train(TrainConfig(dataset="digits", epochs=2, image_size=16), run_dir=out / "run", verbose=0)
    return out / "run" / "model.keras"


def photo(path, size, mode="RGB"):
    from sklearn.datasets import load_sample_image

    image = Image.fromarray(load_sample_image("china.jpg")).resize(size).convert(mode)
    image.save(path)
    return str(path)


def test_grad_cam_of_a_run_takes_raw_pixels_of_any_size(digits_run):
    """Colour pixels of another size go through the run's own preprocessing (grey, resized,
    scaled as recorded): the heatmap is that of the preprocessed image, at the raw size."""
    from cnnkeras.data import Preprocessing, preprocess_images

    raw = np.asarray(Image.open(photo(digits_run.parent / "p.png", (50, 40))))
    cam = interpret.grad_cam(digits_run, raw)
    assert cam.shape == (40, 50)
    record = json.loads((digits_run.parent / "config.json").read_text())
    prep = Preprocessing.from_dict(record["preprocessing"])
    assert prep.channels == 1 and raw.shape[-1] == 3
    model = keras.saving.load_model(digits_run, safe_mode=True)
    x = preprocess_images([raw], prep)
    np.testing.assert_allclose(cam, interpret.grad_cams(model, x, size=(40, 50))[0], atol=1e-6)
    # the grey conversion itself, against PIL's (ITU-R 601 luma), at the model's size
    small = np.asarray(Image.fromarray(raw).resize((prep.width, prep.height)))
    grey = np.asarray(Image.fromarray(small).convert("L"), np.float32) * prep.scale + prep.offset
    np.testing.assert_allclose(preprocess_images([small], prep)[0, ..., 0], grey, atol=1.5 / 255)
    maps = interpret.feature_maps(str(digits_run), raw)
    assert list(maps) == interpret.stage_layers(keras.saving.load_model(digits_run))


def test_inspect_command_writes_every_view(digits_run, tmp_path, capsys):
    images = [photo(tmp_path / "a.jpg", (64, 48)), photo(tmp_path / "b.png", (20, 30), "L")]
    out = tmp_path / "views"
    args = ["inspect", str(digits_run), *images, "--out", str(out), "--class", "3", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["images"]) == 2 and len(result["images"][0]["top"]) == 3
    for r in result["images"]:
        for key in ("gradcam", "features"):
            assert Image.open(r[key]).size[0] > 100  # a real PNG
    assert Image.open(result["filters"]).size[0] > 100
    assert json.loads((out / "inspect.json").read_text()) == result
    fields = [row["receptive_field"] for row in result["layers"]]
    assert fields == sorted(fields) and fields[0] >= 5  # deeper layers see more
    assert main(["inspect", str(digits_run), images[0]]) == 0  # default: inspect/ beside it
    assert "sees" in capsys.readouterr().out
    assert (digits_run.parent / "inspect" / "00_a_gradcam.png").is_file()
    # --top-k and --layers: the five best classes by the model's own scores, the maps asked for
    args = ["inspect", str(digits_run), images[0], "--out", str(tmp_path / "v2"), "--json"]
    assert main([*args, "--top-k", "5", "--layers", "c1_conv"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = keras.saving.load_model(digits_run, safe_mode=True)
    record = json.loads((digits_run.parent / "config.json").read_text())
    x = preprocess_images(
        [np.asarray(Image.open(images[0]))], Preprocessing.from_dict(record["preprocessing"])
    )
    scores = model.predict(x, verbose=0)[0]
    top = result["images"][0]["top"]
    assert [t["label"] for t in top] == [str(i) for i in np.argsort(scores)[::-1][:5]]
    assert [t["score"] for t in top] == pytest.approx(np.sort(scores)[::-1][:5], abs=1e-5)
    assert result["layers"][0]["name"] == "c1_conv"
    assert len(result["layers"]) <= 2  # c1_conv, and the Grad-CAM layer if it is another


def test_evaluate_on_the_validation_and_training_splits(digits_run, tmp_path):
    """`evaluate --split val|train` reports on that split of the run: its size, and the
    accuracy of the model on its images computed here."""
    from cnnkeras.evaluate import evaluate_model

    model = keras.saving.load_model(digits_run, safe_mode=True)
    for split in ("val", "train"):
        m = evaluate_model(digits_run, split=split, out=tmp_path / split)
        x, labels = run_split(digits_run.parent, split)
        assert m["num_samples"] == len(labels)
        predicted = model.predict(x, verbose=0).argmax(1)
        assert m["accuracy"] == pytest.approx(float(np.mean(predicted == labels)))


def test_models_pattern_lists_only_its_matches(capsys):
    from cnnkeras.models import list_models

    assert main(["models", "mobilenet*", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)["models"]]
    assert names == list_models("mobilenet*") and len(names) >= 2
    assert all(name.startswith("mobilenet") for name in names)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layer", "nope"], "no layer 'nope' with a feature map; convolutional layers: c1_conv"),
        (["--layer", "predictions"], "no layer 'predictions' with a feature map"),
        (["--class", "cat"], "class 'cat' is not one of the labels: 0, 1"),
    ],
)
def test_inspect_user_errors(digits_run, tmp_path, extra, message, capsys):
    image = photo(tmp_path / "a.jpg", (32, 32))
    assert main(["inspect", str(digits_run), image, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_inspect_bad_files_in_a_child_process(digits_run, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "fake.keras").write_text("not a model")
    proc = run_cli("inspect", str(digits_run), str(tmp_path / "notes.txt"))
    assert proc.returncode == 2 and "not a readable image" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = run_cli("inspect", str(tmp_path / "fake.keras"), str(tmp_path / "notes.txt"))
    assert proc.returncode == 2 and "could not load" in proc.stderr
    with pytest.raises(UserError, match="the model takes"):
        interpret.grad_cam(keras.saving.load_model(digits_run), np.zeros((8, 8)))
