"""`cnnkeras data check` (issue 27): on a folder of real photos with copies planted where users
make them (the same file twice, a re-encoded and resized copy, a brightened one, one stored
turned with an EXIF tag, a picture under a second label, validation and test images also in
training) it finds exactly those and no other, with no false alarm on a folder of distinct
photos; ``--fix-leakage`` writes a label file without the leaked images; warnings come from
the measured rules; the all-pairs search is exact across its tiles."""

import csv
import io
import json
import shutil

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image, ImageEnhance

from cnnkeras.cli import main
from cnnkeras.data import DEFAULT_SEED, _check, check_dataset, data_check, load_dataset
from cnnkeras.data._check import PLAIN, THUMB, DataCheck, Item, Look, look_file, near_pairs


@pytest.fixture(scope="module")
def distinct(tmp_path_factory):
    """120 distinct real photos (tests/photos.py, no two crops overlapping by a third)."""
    from photos import make_photo_folder

    root = tmp_path_factory.mktemp("distinct") / "photos"
    return make_photo_folder(root, per_class=20, distinct=True)


def _textured(folder, n):
    """``n`` files of ``folder`` with structure enough to compare (not near-uniform)."""
    found = [p for p in sorted(folder.glob("*.jpg")) if _spread(p) > 2 * PLAIN]
    return found[:n]


def _spread(path) -> float:
    return float(np.frombuffer(look_file(str(path)).thumb, np.uint8).std())


def _rows(root, splits: dict[str, str]) -> list[list[str]]:
    """Every photo of ``root`` as path,label,split: the given split, else train."""
    rows = []
    for path in sorted(root.rglob("*.jpg")):
        rel = str(path.relative_to(root))
        rows.append([rel, path.parent.name, splits.get(rel, "train")])
    return rows


def _write_csv(path, rows) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["path", "label", "split"], *rows])


def _jpeg(image: Image.Image, path, **save) -> None:
    image.convert("RGB").save(path, "JPEG", **save)


def test_a_folder_of_distinct_photos_raises_no_alarm(distinct, tmp_path):
    r = data_check(f"folder:{distinct}", tmp_path / "out", seed=DEFAULT_SEED, fix_leakage=True)
    assert r["groups"] == [] and r["leaked"] == [], r["groups"]
    assert r["warnings"] == []
    assert r["counts"]["images"] == 120 and r["counts"]["unreadable"] == 0
    assert r["fixed"] is None and not (tmp_path / "out" / "labels_without_leakage.csv").exists()
    page = (tmp_path / "out" / "data_check.html").read_text()
    assert "nothing to fix" in page and "<img" not in page


def test_planted_copies_are_found_exactly(distinct, tmp_path):
    """Copies planted in a label file's splits are the only groups, of the planted kinds; the
    leaked validation and test images are the ones a fixed label file leaves out."""
    root = tmp_path / "photos"
    shutil.copytree(distinct, root)
    dahlia, flag, trees = (_textured(root / c, 6) for c in ("dahlia", "flag", "trees"))
    planted = {
        # the same file twice in a class
        "dahlia/copy.jpg": dahlia[0],
        # re-encoded at quality 40 and half the size, in the same class
        "dahlia/small.jpg": dahlia[1],
        # one picture under a second label
        "flag/trees_again.jpg": trees[0],
        # a test image brightened by 10% into training; a validation image copied into training
        "trees/brighter.jpg": trees[1],
        "trees/val_copy.jpg": trees[2],
        # stored turned (pixels rotated, EXIF tag 6 turns them back)
        "flag/turned.jpg": flag[0],
    }
    shutil.copy(dahlia[0], root / "dahlia/copy.jpg")
    image = Image.open(dahlia[1])
    _jpeg(
        image.resize((image.width // 2, image.height // 2)), root / "dahlia/small.jpg", quality=40
    )
    shutil.copy(trees[0], root / "flag/trees_again.jpg")
    _jpeg(ImageEnhance.Brightness(Image.open(trees[1])).enhance(1.1), root / "trees/brighter.jpg")
    shutil.copy(trees[2], root / "trees/val_copy.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = Image.open(flag[0]).transpose(Image.Transpose.ROTATE_90)
    stored.save(root / "flag/turned.jpg", quality=92, exif=exif.tobytes())
    whole = (root / "flag" / flag[1].name).read_bytes()
    (root / "flag/cut.jpg").write_bytes(whole[: len(whole) * 3 // 4])  # pixels cut short

    rel = {p: str(p.relative_to(root)) for p in [*dahlia, *flag, *trees]}
    held_out = {str(p.relative_to(root)): "val" for p in sorted(root.glob("*/*_01[0-2].jpg"))}
    held_out |= {str(p.relative_to(root)): "test" for p in sorted(root.glob("*/*_01[3-5].jpg"))}
    for source in (dahlia[0], dahlia[1], trees[0], flag[0], flag[1]):
        held_out.pop(rel[source], None)  # in training, as their copies
    held_out |= {rel[trees[1]]: "test", rel[trees[2]]: "val"}
    _write_csv(root / "labels.csv", _rows(root, held_out))

    r = data_check(f"csv:{root / 'labels.csv'}", tmp_path / "out", seed=0, fix_leakage=True)
    found = {frozenset(i["file"] for i in g["images"]): g for g in r["groups"]}
    expected = {frozenset({name, rel[source]}) for name, source in planted.items()}
    assert set(found) == expected, sorted(map(sorted, found))
    kinds = {name: found[frozenset({name, rel[source]})] for name, source in planted.items()}
    assert kinds["dahlia/copy.jpg"]["exact"] and kinds["dahlia/copy.jpg"]["kinds"] == ["duplicates"]
    assert not kinds["dahlia/small.jpg"]["exact"]
    assert kinds["dahlia/small.jpg"]["kinds"] == ["duplicates"]
    assert kinds["flag/trees_again.jpg"]["kinds"] == ["conflicting labels"]
    assert kinds["trees/brighter.jpg"]["kinds"] == ["leakage"]
    assert kinds["trees/val_copy.jpg"]["kinds"] == ["leakage"]
    assert kinds["flag/turned.jpg"]["kinds"] == ["duplicates"]
    assert sorted(r["leaked"]) == sorted([rel[trees[1]], rel[trees[2]]])
    counts = r["counts"]
    assert (counts["turned"], counts["unreadable"]) == (1, 1)
    assert counts["duplicate_groups"] == 3 and counts["conflicting_groups"] == 1
    assert any("cut.jpg" in w for w in r["warnings"])
    assert any("2 validation/test image(s)" in w for w in r["warnings"])

    fixed = load_dataset(f"csv:{r['fixed']}", seed=0)
    kept = {str(p) for split in fixed.splits.values() for p in split.paths}
    assert str(trees[1]) not in kept and str(trees[2]) not in kept
    everything = load_dataset(f"csv:{root / 'labels.csv'}", seed=0)
    total = sum(len(s) for s in everything.splits.values())
    assert sum(len(s) for s in fixed.splits.values()) == total - 3  # leaked twice, cut once
    assert check_dataset(fixed).leaked == []
    page = (tmp_path / "out" / "data_check.html").read_text()
    assert page.count("<figure") == 2 * len(expected)


def _look(width, height, grey=False) -> Look:
    return Look(width, height, "L" if grey else "RGB", 1, grey, f"{width}x{height}", bytes(256))


def test_warnings_follow_the_rules():
    """Imbalance from 3:1, a class of images at half the others' side or less, grey files
    among colour ones: each one line; balanced, alike data: none."""
    items = [Item("train", label, None, k) for label in range(3) for k in range(10)]
    alike = DataCheck("x", ["a", "b", "c"], items, [_look(100, 80)] * 30, [], [], [])
    assert alike.warnings() == []
    small = [_look(100, 80)] * 20 + [_look(40, 40)] * 10
    check = DataCheck("x", ["a", "b", "c"], items, small, [], [], [])
    (line,) = check.warnings()
    assert line.startswith("class c's images are smaller (median side 40 px) than the others'")
    grey = [_look(100, 80, grey=k < 10) for k in range(30)]
    (line,) = DataCheck("x", ["a", "b", "c"], items, grey, [], [], []).warnings()
    assert "10 image(s) stored grey" in line and "a 100%, b 0%" in line
    many = items + [Item("train", 0, None, k) for k in range(10, 30)]
    (line,) = DataCheck("x", ["a", "b", "c"], many, [_look(100, 80)] * 50, [], [], []).warnings()
    assert line == "classes are imbalanced: a has 30 images, b 10"


def test_all_pairs_search_is_exact_across_tiles(monkeypatch, rng):
    """Tiles of 7 rows over 40 thumbnails give the pairs a brute-force product gives."""
    thumbs = rng.integers(0, 256, (40, THUMB * THUMB)).astype(np.uint8)
    thumbs[31] = np.clip(thumbs[3].astype(int) + 9, 0, 255)  # brighter copy, another tile
    thumbs[12] = thumbs[11]
    monkeypatch.setattr(_check, "TILE", 7)
    found = sorted((int(i), int(j)) for a, b in near_pairs(thumbs) for i, j in np.stack([a, b], 1))
    z = thumbs.astype(float) - thumbs.mean(axis=1, keepdims=True)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    i, j = np.nonzero(np.triu(z @ z.T >= _check.NEAR, k=1))
    assert found == sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(3, 31), (11, 12)]


def test_command_line(distinct, tmp_path, capsys):
    """The command prints the summary and writes its files; a missing folder and an output
    path that is a file are one line each, exit 2, and leave that file as it was."""
    out = tmp_path / "out"
    proc = run_cli("data", "check", f"folder:{distinct}", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["summary"].startswith("data check: 120 images, 6 classes (20 to 20 a class)")
    assert json.loads((out / "data_check.json").read_text())["counts"] == result["counts"]
    blocker = tmp_path / "file"
    blocker.write_bytes(b"keep")
    refused = [
        ["folder:/no/such/folder"],
        [f"folder:{distinct}", "--out", str(blocker)],
        ["digits", "--fix-leakage", "--out", str(tmp_path / "never")],  # no files to list
    ]
    for args in refused:
        capsys.readouterr()
        assert main(["data", "check", *args]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert blocker.read_bytes() == b"keep" and not (tmp_path / "never").exists()


def test_thumbnails_are_read_upright(distinct, tmp_path):
    """A file stored turned (EXIF tag 8) has the thumbnail and shown size of its upright twin."""
    source = _textured(distinct / "dahlia", 1)[0]
    image = Image.open(source)
    exif = Image.Exif()
    exif[0x0112] = 8
    buffer = io.BytesIO()
    image.transpose(Image.Transpose.ROTATE_270).save(buffer, "PNG", exif=exif.tobytes())
    (tmp_path / "turned.png").write_bytes(buffer.getvalue())
    image.save(tmp_path / "upright.png")
    turned, upright = (
        look_file(str(tmp_path / "turned.png")),
        look_file(str(tmp_path / "upright.png")),
    )
    assert (turned.width, turned.height, turned.orientation) == (image.width, image.height, 8)
    assert turned.thumb == upright.thumb
