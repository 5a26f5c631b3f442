"""Users' photos as they come (issue 27): files stored turned with an EXIF orientation are read
upright everywhere (checked against PIL's exif_transpose), a folder already split into
train/val/test keeps its splits, and a CSV label file is a dataset like a folder; bad layouts
and label files are refused in one line before anything is written."""

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from cnnkeras.cli import main
from cnnkeras.data import DEFAULT_AUGMENT, Preprocessing, load_dataset, make_pipeline, read_image
from cnnkeras.data._pipeline import raw_images
from cnnkeras.errors import UserError
from cnnkeras.train import train

# the transpose that stores an upright image so that the tag turns it back (PIL's exif_transpose
# applies FLIP_LEFT_RIGHT, ROTATE_180, FLIP_TOP_BOTTOM, TRANSPOSE, ROTATE_270, TRANSVERSE,
# ROTATE_90 for tags 2-8; the rotations of 6 and 8 are undone by each other)
T = Image.Transpose
STORE = {
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def _store_turned(upright: Image.Image, path, tag: int, **save) -> None:
    stored = upright.transpose(STORE[tag]) if tag != 1 else upright
    exif = Image.Exif()
    exif[0x0112] = tag
    stored.save(path, exif=exif.tobytes(), **save)


def _photos(real_photos, classes=("pagoda", "sky", "dahlia"), per_class=15):
    return {c: sorted((real_photos / c).glob(f"{c}_*.jpg"))[:per_class] for c in classes}


def test_every_exif_orientation_is_read_upright_where_files_are_read(real_photos, tmp_path):
    """Real JPEGs stored with each of the eight tags: the pipeline (training, reports, export's
    calibration and golden images all decode through it) gives PIL's exif_transpose of the file
    bit for bit, `read_image` (predict, inspect, MediaPipe checks) gives the same, and both are
    the upright photo (JPEG re-encoding apart); the tag survives the run's split record, and
    upright copies of the files in a new place are read as they are stored."""
    files = _photos(real_photos, per_class=8)
    turned, upright = tmp_path / "turned", tmp_path / "upright"
    for c, paths in files.items():
        (turned / c).mkdir(parents=True)
        (upright / c).mkdir(parents=True)
        for i, path in enumerate(paths):
            _store_turned(Image.open(path), turned / c / f"{i}.jpg", i + 1, quality=95)
            Image.open(path).save(upright / c / f"{i}.jpg", quality=95)
    data = load_dataset(f"folder:{turned}")
    assert any("21 image(s) are stored turned" in note for note in data.notes), data.notes
    record = data.split_record()
    reread = load_dataset(f"folder:{turned}", record=record)  # as a resume
    moved = load_dataset(f"folder:{upright}", record=record)  # as `--dataset NEW_PLACE`
    assert all(split.orientation is None for split in moved.splits.values())
    for split in [*data.splits.values(), *reread.splits.values(), *moved.splits.values()]:
        decoded = raw_images(split)
        assert len(decoded) == len(split)
        for path, pixels in zip(split.paths, decoded, strict=True):
            reference = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
            np.testing.assert_array_equal(pixels, reference)
            np.testing.assert_array_equal(read_image(path), reference)
    original = np.asarray(Image.open(files["sky"][5]).convert("RGB"), np.float32)
    shown = read_image(turned / "sky" / "5.jpg").astype(np.float32)  # tag 6: phone portrait
    assert shown.shape == original.shape
    assert np.corrcoef(shown.ravel(), original.ravel())[0, 1] > 0.98
    stored = np.asarray(Image.open(turned / "sky" / "5.jpg"), np.float32)  # as decoders see it
    assert stored.shape != original.shape or not np.allclose(stored, original, atol=20)


def test_a_folder_stored_turned_trains_as_its_upright_twin(real_photos, tmp_path):
    """Three classes of real photos, one twin stored upright, the other stored turned with
    tags 2-8 (lossless PNG, so the upright pixels are exactly recoverable): the training
    pipeline (default augmentation included) gives the same batches from both, epoch after
    epoch, so the same seed trains the same model; the run records the tags."""
    for twin in ("upright", "turned"):
        for c, paths in _photos(real_photos, per_class=12).items():
            (tmp_path / twin / c).mkdir(parents=True)
            for i, path in enumerate(paths):
                tag = 1 if twin == "upright" else 2 + i % 7
                _store_turned(Image.open(path), tmp_path / twin / c / f"{i}.png", tag)
    batches = {}
    for twin in ("upright", "turned"):
        data = load_dataset(f"folder:{tmp_path / twin}")
        ds = make_pipeline(
            data.splits["train"],
            Preprocessing(32, 32, 3),
            3,
            batch_size=8,
            training=True,
            augment=DEFAULT_AUGMENT,
            epoch=0,
            repeat=True,
        )
        batches[twin] = [x.numpy() for x, _ in ds.take(2 * 4)]  # two epochs of 27 images
    for upright, turned in zip(batches["upright"], batches["turned"], strict=True):
        np.testing.assert_array_equal(turned, upright)
    recorded = data.split_record()["splits"]["train"]["orientation"]
    assert sorted(set(recorded)) == list(range(2, 9))


def _presplit(real_photos, root, splits=("train", "val", "test"), per_split=(9, 3, 3)):
    for c, paths in _photos(real_photos).items():
        start = 0
        for split, n in zip(splits, per_split, strict=False):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for path in paths[start : start + n]:
                (root / split / c / path.name).write_bytes(path.read_bytes())
            start += n
    return root


def test_a_folder_split_into_train_val_test_keeps_its_splits(real_photos, tmp_path):
    root = _presplit(real_photos, tmp_path / "given")
    data = load_dataset(f"folder:{root}")
    assert data.class_names == ["dahlia", "pagoda", "sky"]
    for name, n in (("train", 27), ("val", 9), ("test", 9)):
        split = data.splits[name]
        assert len(split) == n and np.bincount(split.labels).tolist() == [n // 3] * 3
        assert all(p.startswith(str(root / name)) for p in split.paths)
        for p, label in zip(split.paths, split.labels, strict=True):
            assert p.split("/")[-2] == data.class_names[label]
    assert data.notes[0] == "splits as given: train 27, val 9, test 9 images"
    # no test/ folder (and val/ spelled valid/): the test split is held out of train/, said so
    other = _presplit(real_photos, tmp_path / "no_test", ("train", "valid"), (12, 3))
    data = load_dataset(f"folder:{other}")
    assert (len(data.splits["train"]), len(data.splits["val"]), len(data.splits["test"])) == (
        32,
        9,
        4,
    )
    assert all("/train/" in p for p in data.splits["test"].paths)
    assert data.notes[1].startswith("no test split given: 4 training images (10%)"), data.notes


def test_a_run_on_a_split_folder_trains_on_the_given_splits(real_photos, tmp_path, capsys):
    root = _presplit(real_photos, tmp_path / "given")
    argv = ["train", "--dataset", f"folder:{root}", "--image-size", "16", "--epochs", "1"]
    assert main([*argv, "--out", str(tmp_path / "runs")]) == 0
    assert "splits as given: train 27, val 9, test 9 images" in capsys.readouterr().out
    (run,) = (tmp_path / "runs").iterdir()
    recorded = json.loads((run / "splits.json").read_text())["splits"]
    for name in ("train", "val", "test"):
        assert {f.split("/")[0] for f in recorded[name]["files"]} == {name}
    record = json.loads((run / "config.json").read_text())
    assert record["splits"] == {"train": 27, "val": 9, "test": 9}


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        ({"train": ["a", "b"], "val": ["a"]}, "the given splits disagree on classes (val lacks b)"),
        ({"train": ["a", "b"], "b": []}, "mixes split folders (train) with class folders (b)"),
        ({"test": ["a", "b"], "val": ["a", "b"]}, "has test, val but no train/ folder"),
        (
            {"train": ["a", "b"], "valid": ["a", "b"], "val": ["a", "b"]},
            "two folders for one split",
        ),
    ],
)
def test_split_folders_that_cannot_be_taken_are_refused(
    real_photos, tmp_path, capsys, layout, match
):
    photo = next((real_photos / "sky").glob("*.jpg")).read_bytes()
    for split, classes in layout.items():
        (tmp_path / split).mkdir()
        for c in classes:
            (tmp_path / split / c).mkdir()
            (tmp_path / split / c / "x.jpg").write_bytes(photo)
    with pytest.raises(UserError, match=match.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(f"folder:{tmp_path}")


def _csv(path, text):
    path.write_text(text)
    return f"csv:{path}"


def test_a_label_file_is_a_dataset(real_photos, tmp_path):
    files = _photos(real_photos, per_class=10)
    rows = [f"{p.relative_to(real_photos.parent)},{c}" for c, ps in files.items() for p in ps]
    spec = _csv(real_photos.parent / "labels.csv", "path,label\n" + "\n".join(rows) + "\n")
    data = load_dataset(spec)
    assert data.class_names == ["dahlia", "pagoda", "sky"]
    assert sum(len(s) for s in data.splits.values()) == 30
    for split in data.splits.values():
        for p, label in zip(split.paths, split.labels, strict=True):
            assert p.split("/")[-2] == data.class_names[label]
    again = load_dataset(spec, record=data.split_record())  # as a resumed run reads it
    assert again.splits["test"].paths == data.splits["test"].paths
    # a split column is obeyed; a missing file is counted, listed and left out
    words = ["train"] * 6 + ["val"] * 2 + ["test"] * 2
    rows = [f"{r},{words[i % 10]}" for i, r in enumerate(rows)] + ["gone.jpg,sky,train"]
    spec = _csv(real_photos.parent / "split.csv", "Path,Label,Split\n" + "\n".join(rows) + "\n")
    data = load_dataset(spec)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [18, 6, 6]
    assert data.skipped == [str(real_photos.parent / "gone.jpg")]
    assert any("1 file(s) listed in split.csv do not exist" in n for n in data.notes)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "has columns nothing; a label file needs a header with path and label"),
        ("path,label\n", "lists no images"),
        ("file,class\na.jpg,x\n", "has columns file, class"),
        ("path,label,split\na.jpg,x,train\nb.jpg,y,holdout\n", "line 3: split 'holdout' is not"),
        ("path,label\na.jpg,x\nb.jpg\n", "line 3 has 1 of 2 columns"),
        ("path,label\n\na.jpg,x\nb.jpg\n", "line 4 has 1 of 2 columns"),  # blank lines count
    ],
)
def test_bad_label_files_are_one_line(tmp_path, capsys, text, match):
    spec = _csv(tmp_path / "labels.csv", text)
    argv = ["train", "--dataset", spec, "--out", str(tmp_path / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    assert not (tmp_path / "runs").exists()


def test_the_preview_is_the_first_training_step_with_its_mixed_labels(real_photos, tmp_path):
    """`data preview` shows the images and labels of the run's own first step (the fit
    pipeline's first batch, MixUp included), and a run writes the same grid. (A file that
    fails to decode moves the order on differently in a cached pipeline: the folder here
    has none, unlike the `real_photos` folder.)"""
    import keras

    from cnnkeras.data._preview import first_batch, label_text
    from cnnkeras.train import TrainConfig, fit_pipelines, plan_run, preprocessing_for
    from cnnkeras.train._setup import load_data

    for c, paths in _photos(real_photos).items():
        (tmp_path / "photos" / c).mkdir(parents=True)
        for path in paths:
            (tmp_path / "photos" / c / path.name).write_bytes(path.read_bytes())
    folder = f"folder:{tmp_path / 'photos'}"
    options = dict(image_size=32, augment=("flip", "rotation", "mixup"), seed=3, epochs=1)
    config = TrainConfig(dataset=folder, **options)
    data = load_data(config, verbose=0)
    prep = preprocessing_for(config.arch, 32, data.channels)
    plan = plan_run(config, data, prep, verbose=0)
    model = keras.Sequential([keras.Input(prep.input_shape), keras.layers.Flatten()])
    fit = fit_pipelines(
        model, data, prep, plan, seed=3, augment=plan.augment, cache_dir=tmp_path / "cache"
    )
    x_fit, y_fit = next(iter(fit.train))
    split = data.splits["train"]
    x, y = first_batch(
        split, 3, prep, augment=plan.augment, mix=dict(plan.mix), seed=3, batch_size=plan.batch_size
    )
    np.testing.assert_array_equal(x, x_fit.numpy())
    np.testing.assert_array_equal(y, y_fit.numpy())
    assert (y.max(1) < 0.995).any()  # mixed labels, shown as two shares
    names = data.class_names
    assert label_text(np.eye(3)[2], names) == names[2]
    assert label_text(np.array([0.3, 0, 0.7]), names) == f"0.70 {names[2]} + 0.30 {names[0]}"
    argv = ["data", "preview", folder, "--image-size", "32", "--seed", "3"]
    argv += ["--augment", "flip,rotation,mixup", "--out", str(tmp_path / "preview.png")]
    assert main(argv) == 0
    assert Image.open(tmp_path / "preview.png").size == (4 * 112, 4 * (112 + 30))
    train(config, run_dir=tmp_path / "run", verbose=0)
    assert (tmp_path / "run" / "train_batch.png").read_bytes() == (
        tmp_path / "preview.png"
    ).read_bytes()
