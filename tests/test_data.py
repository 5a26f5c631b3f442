"""Datasets and the tf.data pipeline on real (small) data: embedded sets, tfds through
mock_data, and image folders written by the test."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from cnnkeras.data import (
    DEFAULT_AUGMENT,
    Preprocessing,
    load_dataset,
    make_pipeline,
    preprocess_images,
)
from cnnkeras.errors import UserError


def test_digits_splits_are_stratified_disjoint_and_seeded():
    a = load_dataset("digits", seed=7)
    assert a.class_names == [str(i) for i in range(10)] and a.channels == 1
    sizes = {k: len(v) for k, v in a.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 180
    for split in a.splits.values():  # every class in every split
        assert set(split.labels) == set(range(10))
    index = np.concatenate([v.index for v in a.splits.values()])
    assert sorted(index) == list(range(1797))  # disjoint, and together the whole set
    total = np.concatenate([v.images for v in a.splits.values()])
    assert total.shape == (1797, 8, 8, 1) and total.dtype == np.uint8 and total.max() == 255
    again = load_dataset("digits", seed=7)
    np.testing.assert_array_equal(a.splits["test"].images, again.splits["test"].images)
    other = load_dataset("digits", seed=8)
    assert not np.array_equal(a.splits["test"].images, other.splits["test"].images)


def test_mnist5k_is_real_mnist():
    d = load_dataset("mnist5k")
    total = sum(len(v) for v in d.splits.values())
    assert total == 5000 and d.native_size == (28, 28)
    labels = np.concatenate([v.labels for v in d.splits.values()])
    assert np.bincount(labels).tolist() == [500] * 10
    assert np.bincount(d.splits["test"].labels).min() >= 49  # stratified


def test_tfds_with_own_test_split_streams_records():
    with tfds.testing.mock_data(num_examples=60):
        d = load_dataset("tfds:mnist")
        assert d.spec == "tfds:mnist" and d.class_names == [str(i) for i in range(10)]
        assert len(d.splits["test"]) == 60  # the dataset's own test split, kept whole
        assert len(d.splits["train"]) + len(d.splits["val"]) == 60
        train = d.splits["train"]
        assert train.images is None and train.tfds.split == "train"  # positions, no pixels
        ds = make_pipeline(train, Preprocessing(28, 28, 1), 10, batch_size=64, positions=True)
        x, y, positions = next(iter(ds))
    assert x.shape == (len(train), 28, 28, 1) and y.shape == (len(train), 10)
    assert sorted(positions.numpy()) == list(range(len(train)))  # each record once, in order
    np.testing.assert_array_equal(np.argmax(y, axis=1), train.labels)


def test_tfds_without_test_split_and_variable_sizes(monkeypatch):
    real_load = tfds.load

    def load(name, split, **kwargs):  # tf_flowers has only 'train', as in the real catalogue
        if split == "test":
            raise ValueError("Unknown split 'test'. Should be one of ['train'].")
        return real_load(name, split=split, **kwargs)

    monkeypatch.setattr(tfds, "load", load)
    with tfds.testing.mock_data(num_examples=50):
        d = load_dataset("tfds:tf_flowers")
        assert d.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
        assert sum(len(v) for v in d.splits.values()) == 50  # test carved out of train
        assert d.splits["test"].tfds.split == "train"
        index = np.concatenate([s.index for s in d.splits.values()])
        assert sorted(index) == list(range(50))  # disjoint positions in the one tfds split
        ds = make_pipeline(d.splits["train"], Preprocessing(24, 24, 3), 5, training=True)
        batch = next(iter(ds))  # images of different sizes, decoded and resized
    assert batch[0].shape[1:] == (24, 24, 3)


def test_tfds_unknown_name():
    with pytest.raises(UserError, match="did you mean mnist"):
        load_dataset("tfds:mnsit")


def write_image(path, size, mode, fmt):
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], len(mode))
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path, fmt)


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "shapes"
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    for i in range(4):
        write_image(root / "cats" / f"c{i}.png", (30 + i, 20), "RGB", "PNG")
        write_image(root / "dogs" / f"d{i}.jpg", (16, 40 + i), "L", "JPEG")
    write_image(root / "cats" / "c9.bmp", (12, 12), "RGB", "BMP")
    write_image(root / "dogs" / "d9.gif", (25, 25), "L", "GIF")
    write_image(root / "dogs" / "d10.png", (25, 25), "RGBA", "PNG")
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def test_folder_dataset_skips_and_counts_unreadable_files(image_folder):
    d = load_dataset(f"folder:{image_folder}")
    assert d.class_names == ["cats", "dogs"]
    assert sorted(p.split("/")[-1] for p in d.skipped) == ["broken.png", "notes.txt"]
    assert sum(len(v) for v in d.splits.values()) == 11
    assert d.channels == 3  # mixed colour modes: RGB
    for split in d.splits.values():
        ds = make_pipeline(split, Preprocessing(32, 32, 3), 2, batch_size=16)
        x, y = next(iter(ds))
        assert x.shape[1:] == (32, 32, 3) and y.shape[1:] == (2,)
        assert float(x.numpy().min()) >= 0.0 and float(x.numpy().max()) <= 1.0


def test_folder_errors(image_folder, tmp_path):
    (image_folder / "birds").mkdir()
    with pytest.raises(UserError, match="birds has no readable images"):
        load_dataset(f"folder:{image_folder}")
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    one = tmp_path / "one"
    (one / "only").mkdir(parents=True)
    with pytest.raises(UserError, match="at least two"):
        load_dataset(f"folder:{one}")
    few = tmp_path / "few"
    for name, n in (("a", 3), ("b", 2)):
        (few / name).mkdir(parents=True)
        for i in range(n):
            write_image(few / name / f"{i}.png", (8, 8), "L", "PNG")
    with pytest.raises(UserError, match="'b' has 2 image"):
        load_dataset(f"folder:{few}")


def test_unknown_spec():
    with pytest.raises(UserError, match="unknown dataset 'cifar'; use digits, mnist5k"):
        load_dataset("cifar")


def test_pipeline_preprocessing_and_augmentation():
    d = load_dataset("digits")
    split = d.splits["train"]
    prep = Preprocessing(16, 16, 3)
    plain = make_pipeline(split, prep, 10, batch_size=32)
    x1 = np.concatenate([x for x, _ in plain])
    x2 = np.concatenate([x for x, _ in plain])
    np.testing.assert_array_equal(x1, x2)  # evaluation batches are stable
    assert x1.shape == (len(split), 16, 16, 3)
    np.testing.assert_array_equal(x1[..., 0], x1[..., 2])  # grey to RGB
    # resize of the raw image, scaled to [0, 1]
    expected = preprocess_images([split.images[0]], prep)[0]
    np.testing.assert_allclose(x1[0], expected, rtol=1e-6)
    with pytest.raises(UserError, match="unknown augmentation"):
        make_pipeline(split, prep, 10, training=True, augment=["warp"])


def test_each_augmentation_changes_the_pixels_and_nothing_else():
    """Training batches of one epoch with and without each kind: the same images in the same
    order with the same labels (the order is a function of the seed and the epoch), other
    pixels; a flip is the mirror image or the image itself, and the default set is applied."""
    split = load_dataset("digits").splits["train"]
    prep = Preprocessing(16, 16, 1)

    def first_batch(augment):
        ds = make_pipeline(
            split,
            prep,
            10,
            batch_size=64,
            training=True,
            augment=augment,
            seed=5,
            epoch=0,
            positions=True,
        )
        return [t.numpy() for t in next(iter(ds))]

    x, y, pos = first_batch([])
    for kind in ("flip", "rotation", "zoom", "translation"):
        xa, ya, posa = first_batch([kind])
        np.testing.assert_array_equal(posa, pos)
        np.testing.assert_array_equal(ya, y)
        changed = [not np.allclose(a, b) for a, b in zip(xa, x, strict=True)]
        assert sum(changed) >= len(x) // 4, (kind, sum(changed))
        if kind == "flip":
            mirrored = [np.array_equal(a, b[:, ::-1]) for a, b in zip(xa, x, strict=True)]
            assert all(m or not c for m, c in zip(mirrored, changed, strict=True))
            assert 0 < sum(mirrored) < len(x)
    xd, _, _ = first_batch(list(DEFAULT_AUGMENT))
    assert not np.allclose(xd, x)


def test_rgb_to_grayscale():
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 255
    out = preprocess_images([rgb], Preprocessing(10, 12, 1))
    assert out.shape == (1, 10, 12, 1)
    np.testing.assert_allclose(out[0, 0, 0, 0], 0.2989, atol=1e-3)  # ITU-R 601 luma of red


def test_tfds_download_path_imports():
    """The real (network) loading path reads the builder's code path before downloading;
    tfds 4.9.10 needs importlib_resources there without declaring it (requirements.txt does)."""
    builder = tfds.builder("mnist")
    assert builder.code_path.name.endswith(".py")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Real JPEG crops of three photographs (tests/photos.py), 8 per class, and two files
    whose headers are fine but whose pixels are cut short: found only by decoding."""
    from photos import make_photo_folder

    root = make_photo_folder(tmp_path_factory.mktemp("photos") / "photos", per_class=8)
    for name in ("sky", "flag"):
        whole = (root / name / f"{name}_000.jpg").read_bytes()
        (root / name / "cut.jpg").write_bytes(whole[: int(len(whole) * 0.8)])
    return root


def test_folder_check_reads_headers_and_streaming_skips_broken_files(photo_folder):
    from cnnkeras.data._pipeline import DecodeTally

    d = load_dataset(f"folder:{photo_folder}", seed=3)
    assert d.skipped == [] and d.channels == 3 and len(d.class_names) == 6
    assert sum(len(s) for s in d.splits.values()) == 50  # the cut files pass the header check
    cut = {str(photo_folder / n / "cut.jpg") for n in ("sky", "flag")}
    prep = Preprocessing(32, 32, 3)
    failed, blanks = set(), 0
    for name, split in d.splits.items():
        tally = DecodeTally(split)
        training = name == "train"  # training refills a broken file's place, others weigh it 0
        ds = make_pipeline(
            split,
            prep,
            6,
            batch_size=4,
            training=training,
            tally=tally,
            sample_weights=not training,
        )
        assert int(ds.cardinality()) == -(-len(split) // 4)  # steps known before any decoding
        for _ in range(2):  # every epoch has all its steps and images
            assert sum(int(batch[0].shape[0]) for batch in ds) == len(split)
        if not training:
            blanks += sum(int((w.numpy() == 0).sum()) for _, _, w in ds)
        failed |= set(tally.failed())
    assert failed == cut
    assert blanks == len(cut - set(d.splits["train"].paths))


def test_split_record_reloads_the_same_images(photo_folder, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(photo_folder, folder)
    d = load_dataset(f"folder:{folder}", seed=5)
    record = d.split_record()
    for i in range(4):  # new photos arrive after the run: the recorded split ignores them
        shutil.copy(folder / "sky" / "sky_001.jpg", folder / "sky" / f"new{i}.jpg")
    again = load_dataset(f"folder:{folder}", seed=5, record=record)
    fresh = load_dataset(f"folder:{folder}", seed=5)
    for name in ("train", "val", "test"):
        assert again.splits[name].paths == d.splits[name].paths
        np.testing.assert_array_equal(again.splits[name].labels, d.splits[name].labels)
    assert sum(len(s) for s in fresh.splits.values()) == 54  # without the record: rescanned
    digits = load_dataset("digits", seed=9)
    same = load_dataset("digits", seed=1, record=digits.split_record())  # the record's seed
    np.testing.assert_array_equal(same.splits["test"].index, digits.splits["test"].index)
    record["splits"]["test"]["labels"][0] += 1
    with pytest.raises(UserError, match="changed by hand"):
        load_dataset(f"folder:{folder}", record=record)


def test_cache_modes_give_the_same_images(photo_folder, tmp_path):
    from cnnkeras.data._pipeline import cache_file, resolve_cache

    d = load_dataset(f"folder:{photo_folder}")
    split, prep = d.splits["train"], Preprocessing(24, 24, 3)

    def epoch(cache):
        ds = make_pipeline(
            split,
            prep,
            6,
            batch_size=8,
            training=True,
            cache=cache,
            cache_dir=tmp_path,
            positions=True,
        )
        pairs = (zip(xb.numpy(), pb.numpy(), strict=True) for xb, _, pb in ds)
        return {int(p): x for batch in pairs for x, p in batch}

    plain = epoch("none")
    prefix = cache_file(tmp_path, split, prep)
    prefix.with_name(prefix.name + "_0.lockfile").write_text("")  # a writer killed mid-pass
    for cache in ("memory", "disk"):
        got = epoch(cache)
        assert got.keys() == plain.keys()
        for p in got:
            np.testing.assert_allclose(got[p], plain[p], atol=1e-5)
    assert prefix.with_name(prefix.name + ".index").is_file()  # the disk cache was written
    assert not list(tmp_path.glob("*.lockfile"))
    assert resolve_cache("auto", 2**20, budget_mb=1) == "memory"
    assert resolve_cache("auto", 2**20 + 1, budget_mb=1) == "none"
    with pytest.raises(UserError, match="cache must be one of"):
        resolve_cache("ram", 1)


def test_a_long_folder_scan_reports_progress(photo_folder, monkeypatch, capsys):
    from cnnkeras import _io

    monkeypatch.setattr(_io.Progress.__init__, "__defaults__", (0.0, 20))  # every_s, quiet_below
    load_dataset(f"folder:{photo_folder}", verbose=1)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == f"{photo_folder}: files checked: 50, done"
    assert any(line.endswith("files checked: 20") for line in lines)
    load_dataset(f"folder:{photo_folder}", verbose=0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("cache", ["none", "memory", "disk"])
def test_an_endless_pipeline_keeps_epoch_boundaries(tmp_path, cache):
    # train runs fit(steps_per_epoch=...) over repeat=True pipelines, to keep one iterator
    # across epochs: each run of `steps` batches must still be one whole epoch
    from photos import make_photo_folder

    d = load_dataset(f"folder:{make_photo_folder(tmp_path / 'photos', per_class=4)}", seed=1)
    prep = Preprocessing(16, 16, 3)
    for name, training in (("train", True), ("test", False)):
        split = d.splits[name]
        ds = make_pipeline(
            split,
            prep,
            6,
            batch_size=3,
            training=training,
            cache=cache,
            cache_dir=tmp_path / name,
            positions=True,
            repeat=True,
        )
        assert int(ds.cardinality()) == tf.data.INFINITE_CARDINALITY
        steps = -(-len(split) // 3)
        batches = [b[2].numpy() for b in ds.take(3 * steps)]
        epochs = [np.concatenate(batches[i * steps : (i + 1) * steps]) for i in range(3)]
        for order in epochs:
            assert sorted(order) == list(range(len(split)))  # each image once an epoch
        assert (len({tuple(o) for o in epochs}) > 1) == training  # reshuffled only in training
