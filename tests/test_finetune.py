"""Transfer learning: freezing really freezes, phase 2 unfreezes exactly what was asked, the
run folder is complete, imagenet:NAME goes through the weight-copy path, bad input is refused."""

import json

import keras
import numpy as np
import pytest
from helpers import history, killed_and_resumed, offline_application, run_callback, run_cli
from PIL import Image

from cnnkeras.demos.transfer import METHODS, transfer_demo
from cnnkeras.errors import UserError
from cnnkeras.models import model_info
from cnnkeras.train import FinetuneConfig, TrainConfig, finetune, train

# a module-scoped fixture trains a model: pytest-xdist keeps the module on one worker
pytestmark = pytest.mark.xdist_group("finetune")


@pytest.fixture(scope="module")
def lenet_base(tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    result = train(
        TrainConfig(dataset="digits", image_size=16, epochs=2), run_dir=out / "run", verbose=0
    )
    return out / "run" / "model.keras", result


@pytest.fixture(scope="module")
def mobilenet_base(tmp_path_factory):
    """MobileNet v1 (depthwise and pointwise convolutions, batch norm after each): what the
    freezing tests need, traced in half the time of v2's 150 layers (a phase of a v2 finetune
    spent 20 s here tracing); v2 is the base of the imagenet: test below."""
    out = tmp_path_factory.mktemp("mbase")
    config = TrainConfig(
        arch="mobilenet_v1",
        dataset="digits",
        image_size=32,
        epochs=1,
        model_options={"alpha": 0.25},
    )
    train(config, run_dir=out / "run", verbose=0)
    return out / "run" / "model.keras"


def features_of(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def layer_weights(model):
    """{"layer/index": array} for every weight of every layer, moving statistics included."""
    return {
        f"{layer.name}/{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())
    }


def base_weights(path):
    from cnnkeras.train._finetune import feature_extractor

    return layer_weights(feature_extractor(keras.saving.load_model(path, safe_mode=True))[0])


def test_phase1_freezes_base_and_batchnorm_statistics(mobilenet_base, tmp_path):
    before = base_weights(mobilenet_base)
    bn = [
        layer.name
        for layer in keras.saving.load_model(mobilenet_base).layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert f"{bn[0]}/2" in before  # the moving mean is among the compared weights
    result = finetune(
        FinetuneConfig(base=str(mobilenet_base), dataset="digits", epochs_head=2),
        run_dir=tmp_path / "ft",
        verbose=0,
    )
    model = keras.saving.load_model(tmp_path / "ft" / "model.keras", safe_mode=True)
    after = layer_weights(features_of(model))
    assert before.keys() == after.keys()
    for key in before:  # kernels, gammas, betas and moving statistics: all unchanged
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    assert result["epochs_run"] == 2
    layers = json.loads((tmp_path / "ft" / "trainable_layers.json").read_text())
    assert layers == {"phase1": ["predictions"]}
    # looking inside a transfer model: its layers inside the nested base are base/layer
    from cnnkeras import interpret

    cam_layer = interpret.default_cam_layer(model)
    assert cam_layer.startswith(features_of(model).name + "/")
    x = np.random.default_rng(0).random(model.input_shape[1:]).astype("float32")
    assert interpret.grad_cam(model, x).shape == model.input_shape[1:3]
    maps = interpret.feature_maps(model, x)
    assert maps and all(name.startswith(features_of(model).name + "/") for name in maps)
    fields = list(interpret.receptive_fields(model).values())
    assert fields[0] == 3 and fields == sorted(fields)  # a chain: each layer sees at least as much
    report = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert report["top_losses_note"] == "Grad-CAM of the predicted class"


def test_phase2_unfreezes_exactly_the_top_layers(lenet_base, tmp_path):
    path, _ = lenet_base
    before = base_weights(path)
    config = FinetuneConfig(
        base=str(path),
        dataset="digits",
        epochs_head=1,
        epochs_finetune=2,
        unfreeze="1",
        lr_finetune=1e-3,
    )
    result = finetune(config, run_dir=tmp_path / "ft", verbose=0)
    layers = json.loads((tmp_path / "ft" / "trainable_layers.json").read_text())
    # the base is the convolutional part (c1, c3); its top layer with weights is c3
    assert layers["phase2_unfrozen"] == ["c3_conv"]
    assert layers["phase2"] == ["lenet5_features/c3_conv", "predictions"]
    model = keras.saving.load_model(tmp_path / "ft" / "model.keras", safe_mode=True)
    after = layer_weights(features_of(model))
    for key in before:
        changed = not np.array_equal(before[key], after[key])
        assert changed == key.startswith("c3_conv/"), key
    history = (tmp_path / "ft" / "history.csv").read_text().splitlines()
    assert history[0].endswith(",phase")
    assert [line.split(",")[-1] for line in history[1:]] == ["1", "2", "2"]
    assert result["epochs_run"] == 3


@pytest.mark.parametrize("train_bn", [False, True])
def test_unfreeze_all_with_and_without_batch_norm(mobilenet_base, train_bn, tmp_path, monkeypatch):
    """`--unfreeze all`: every convolution of the MobileNet trains in phase 2; its batch-norm
    layers (scale, offset and moving statistics) stay as they were unless `--train-bn`.
    `--head-dropout` is the rate of the new head's dropout."""
    before = base_weights(mobilenet_base)
    last: dict = {}  # the base's weights after the last epoch (model.keras is the best one)

    class Last(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            last.update(layer_weights(features_of(self.model)))

    run_callback(monkeypatch, lambda _: Last())
    config = FinetuneConfig(
        base=str(mobilenet_base),
        dataset="digits",
        epochs_head=1,
        epochs_finetune=1,
        unfreeze="all",
        train_bn=train_bn,
        head_dropout=0.35,
        lr_finetune=1e-3,
    )
    finetune(config, run_dir=tmp_path / "ft", verbose=0)
    model = keras.saving.load_model(tmp_path / "ft" / "model.keras", safe_mode=True)
    after = {key: np.asarray(value) for key, value in last.items()}
    base = features_of(model)
    kinds = {layer.name: type(layer).__name__ for layer in base.layers}
    for key in before:
        changed = not np.array_equal(before[key], after[key])
        kind = kinds[key.split("/")[0]]
        if kind == "BatchNormalization":
            assert changed == train_bn, key
        elif kind in ("Conv2D", "DepthwiseConv2D") and key.endswith("/0"):
            assert changed, key
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [pytest.approx(0.35)]


def test_new_head_run_folder_and_channel_conversion(lenet_base, tmp_path):
    root = tmp_path / "colours"
    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir(parents=True)
        for i in range(8):
            image = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)  # the base's size
            image[..., channel] = 200 + i
            Image.fromarray(image).save(root / name / f"{i}.png")
    path, _ = lenet_base  # a 1-channel base; the RGB images are converted to grayscale
    finetune(
        FinetuneConfig(base=str(path), dataset=f"folder:{root}", epochs_head=2),
        run_dir=tmp_path / "ft",
        verbose=0,
    )
    run = tmp_path / "ft"
    for name in (
        "config.json",
        "model.keras",
        "labels.txt",
        "history.csv",
        "metrics.json",
        "report.html",
        "trainable_layers.json",
        "training_curves.png",
    ):
        assert (run / name).is_file(), name
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert model.output_shape == (None, 2)
    assert model.input_shape == (None, 16, 16, 1)
    assert (run / "labels.txt").read_text().split() == ["blue", "red"]
    config = json.loads((run / "config.json").read_text())
    assert config["base"] == str(path) and config["status"] == "done"
    # the colour files reach the model as PIL's grey (ITU-R 601 luma), not as one channel
    from cnnkeras.data import Preprocessing, load_dataset
    from cnnkeras.saved import predict_split

    data = load_dataset(config["dataset"], record=json.loads((run / "splits.json").read_text()))
    prep = Preprocessing.from_dict(config["preprocessing"])
    test = data.splits["test"]
    scores, _ = predict_split(model, test, prep)
    grey = [np.asarray(Image.open(p).convert("L"), np.float32)[..., None] for p in test.paths]
    expected = model.predict(np.stack(grey) * prep.scale + prep.offset, verbose=0)
    np.testing.assert_allclose(scores, expected, atol=2e-3)


def test_imagenet_base_loads_through_the_copy_path(monkeypatch, tmp_path):
    offline_app = offline_application(monkeypatch, "MobileNetV2")  # no download
    config = FinetuneConfig(
        base="imagenet:mobilenet_v2", dataset="digits", image_size=32, epochs_head=1
    )
    finetune(config, run_dir=tmp_path / "ft", verbose=0)
    (call,) = offline_app.calls
    assert call["weights"] == "imagenet" and call["include_top"] is False
    assert call["input_shape"] == (32, 32, 3)
    model = keras.saving.load_model(tmp_path / "ft" / "model.keras", safe_mode=True)
    copied = features_of(model).get_weights()
    assert len(copied) == len(offline_app.weights)
    for a, b in zip(copied, offline_app.weights, strict=True):  # copied, then kept frozen
        np.testing.assert_array_equal(a, b)
    assert model.get_layer("imagenet_scale").scale == pytest.approx(1 / 127.5)
    assert model.input_shape == (None, 32, 32, 3)


def test_caffe_preprocessing_layer():
    from cnnkeras.train._finetune import imagenet_input_layers

    (layer,) = imagenet_input_layers(model_info("resnet50").facts.imagenet_input)
    rgb = np.array([[[[10.0, 20.0, 30.0]]]], "float32")
    out = keras.ops.convert_to_numpy(layer(rgb))
    np.testing.assert_allclose(out[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], atol=1e-4)


def test_bad_bases(tmp_path, lenet_base):
    with pytest.raises(UserError, match="does not exist"):
        finetune(FinetuneConfig(base=str(tmp_path / "nope.keras"), dataset="digits"))
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    with pytest.raises(UserError, match="could not load"):
        finetune(FinetuneConfig(base=str(fake), dataset="digits"))
    with pytest.raises(UserError, match=r"not a \.keras model file"):
        finetune(FinetuneConfig(base=str(lenet_base[0].parent / "labels.txt"), dataset="digits"))
    with pytest.raises(UserError, match="takes 16x16 input"):
        finetune(FinetuneConfig(base=str(lenet_base[0]), dataset="digits", image_size=32))
    with pytest.raises(UserError, match="no official ImageNet weights"):
        finetune(FinetuneConfig(base="imagenet:lenet5", dataset="digits"))
    with pytest.raises(UserError, match="needs `unfreeze`"):
        finetune(FinetuneConfig(base=str(lenet_base[0]), dataset="digits", epochs_finetune=2))


def test_a_finetune_killed_in_phase_2_resumes_to_the_uninterrupted_run(lenet_base, tmp_path):
    """SIGKILL once phase 2 (top layers unfrozen) has begun; `train --resume` goes on in the
    phase it was in and ends with the uninterrupted run's history, bit for bit."""
    args = [
        "finetune",
        *("--base", str(lenet_base[0]), "--dataset", "digits", "--augment", "rotation"),
        *("--epochs-head", "3", "--epochs-finetune", "3", "--unfreeze", "2", "--quiet"),
    ]
    run, reference, _ = killed_and_resumed(args, tmp_path, rows=4, epochs=6)
    assert (run / "history.csv").read_bytes() == (reference / "history.csv").read_bytes()
    assert [int(r["phase"]) for r in history(run)] == [1, 1, 1, 2, 2, 2]
    layers = json.loads((run / "trainable_layers.json").read_text())
    assert layers == json.loads((reference / "trainable_layers.json").read_text())


def test_cli_error_is_one_line(tmp_path):
    proc = run_cli("finetune", "--base", str(tmp_path / "x.keras"), "--dataset", "digits")
    assert proc.returncode == 2
    assert proc.stderr.startswith("cnnkeras: error: base") and proc.stderr.count("\n") == 1


def test_transfer_demo_runs_every_method():
    result = transfer_demo(k=5, seeds=(0,), pretrain_epochs=3, head_epochs=5, finetune_epochs=2)
    assert result["k"] == 5 and result["test_images"] == 251  # digits 5-9 of the test split
    (run,) = result["runs"]
    for method in METHODS:  # a share of the 251 test images, summarised as measured
        assert run[method] * 251 == pytest.approx(round(run[method] * 251), abs=1e-6)
        assert result["summary"][method] == {"mean": run[method], "std": 0.0}
    assert run["frozen_base_new_head"] > 0.4  # far above chance (0.2) from 25 images
    # a demo's result as every demo gives it: the table, the verdict, the figure
    assert result["columns"] == ["method", "seed 0", "mean"]
    assert [r["method"] for r in result["rows"]] == [m.replace("_", " ") for m in METHODS]
    assert result["rows"][2]["seed 0"] == f"{run['from_scratch']:.3f}"
    assert result["held"] == (run["frozen_then_finetuned"] > run["from_scratch"])
    assert result["png"][:4] == b"\x89PNG" and "from 5 labelled images" in result["verdict"]
