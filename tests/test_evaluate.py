"""Metrics against hand-computed values on fixed arrays, and the report files."""

import json

import numpy as np
import pytest

from cnnkeras.evaluate import compute_metrics, write_report

NAMES = ["cat", "dog", "bird"]
# 6 images; "bird" (class 2) is never predicted
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_SCORE = np.array(
    [
        [0.8, 0.1, 0.1],  # cat -> cat
        [0.3, 0.6, 0.1],  # cat -> dog
        [0.2, 0.7, 0.1],  # dog -> dog
        [0.1, 0.8, 0.1],  # dog -> dog
        [0.5, 0.2, 0.3],  # bird -> cat (bird 2nd best)
        [0.2, 0.5, 0.3],  # bird -> dog (bird 2nd best)
    ]
)


def test_multiclass_metrics_by_hand():
    m = compute_metrics(Y_TRUE, Y_SCORE, NAMES, top_k=2)
    assert m["accuracy"] == pytest.approx(3 / 6)
    # top-2: every true class is within the two highest scores except image 1? cat 0.3 is 2nd
    assert m["top_2_accuracy"] == pytest.approx(6 / 6)
    # predicted: cat {0, 4}, dog {1, 2, 3, 5}, bird {}
    assert m["precision"]["per_class"] == pytest.approx({"cat": 1 / 2, "dog": 2 / 4, "bird": 0})
    assert m["recall"]["per_class"] == pytest.approx({"cat": 1 / 2, "dog": 2 / 2, "bird": 0})
    f1_dog = 2 * 0.5 * 1.0 / 1.5
    assert m["f1"]["per_class"] == pytest.approx({"cat": 0.5, "dog": f1_dog, "bird": 0})
    assert m["precision"]["macro"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert m["recall"]["macro"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0) / 3)  # mean recall
    assert m["f1"]["macro"] == pytest.approx((0.5 + f1_dog) / 3)
    assert m["f1"]["micro"] == pytest.approx(0.5)  # = accuracy for single-label
    assert m["f1"]["weighted"] == pytest.approx((2 * 0.5 + 2 * f1_dog) / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 1, 0]]
    assert m["confusion_matrix_normalized"][0] == [0.5, 0.5, 0.0]
    # AP of "cat": scores ranked 0.8(cat) 0.5(bird) 0.3(cat) ...: P@1 = 1, P@3 = 2/3
    assert m["average_precision"]["cat"] == pytest.approx((1 + 2 / 3) / 2)
    # AP of "dog": 0.8(dog) 0.7(dog) 0.6 0.5 ...: both positives first -> 1
    assert m["average_precision"]["dog"] == pytest.approx(1.0)
    # AP of "bird": 0.3, 0.3 tie at the top with 4 x 0.1 below -> precision 2/2 at recall 1
    assert m["average_precision"]["bird"] == pytest.approx(1.0)
    assert m["mAP"] == pytest.approx((5 / 6 + 1 + 1) / 3)
    assert "binary" not in m


def test_binary_metrics_name_tp_tn_fp_fn():
    y_true = np.array([1, 1, 1, 0, 0, 0, 0])
    p_pos = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4])
    scores = np.stack([1 - p_pos, p_pos], axis=1)
    m = compute_metrics(y_true, scores, ["ok", "defect"])
    assert m["binary"] == {"positive_class": "defect", "TP": 2, "TN": 3, "FP": 1, "FN": 1}
    assert m["precision"]["per_class"]["defect"] == pytest.approx(2 / 3)
    assert m["recall"]["per_class"]["defect"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(5 / 7)
    # ranking: .9 d, .8 d, .6 o, .4 o, .3 d -> AP = (1 + 1 + 3/5) / 3
    assert m["average_precision"]["defect"] == pytest.approx((1 + 1 + 3 / 5) / 3)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="scores must be"):
        compute_metrics(Y_TRUE, Y_SCORE[:, :2], NAMES)


def test_report_files(tmp_path):
    images = np.random.default_rng(0).uniform(0, 1, (6, 8, 8, 1))
    m = write_report(tmp_path, Y_TRUE, Y_SCORE, NAMES, images=images, title="unit")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("accuracy", "precision", "recall", "f1", "confusion_matrix", "mAP"):
        assert saved[key] == m[key]
    for key in ("precision", "recall", "f1"):
        assert set(saved[key]) == {"macro", "micro", "weighted", "per_class"}
    csv = (tmp_path / "confusion_matrix.csv").read_text().splitlines()
    assert csv[0] == "true\\predicted,cat,dog,bird" and csv[3] == "bird,1,1,0"
    plots = ("confusion_matrix", "confusion_matrix_normalized", "pr_curves", "misclassified")
    for png in (*plots, "reliability", "risk_coverage"):
        assert (tmp_path / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "report.html").read_text()
    # six plots, then top losses and worst classes (no model here: no Grad-CAM)
    assert html.count("data:image/png;base64,") == 8 and "<table>" in html
    md = (tmp_path / "report.md").read_text()
    assert "| bird | 0.0000 | 0.0000 | 0.0000 |" in md and "accuracy: **0.5000**" in md
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_report_learns_from_its_errors(tmp_path):
    from html.parser import HTMLParser

    import keras

    from cnnkeras.models import create_model

    # most confused by hand: cat->dog 1, bird->cat 1, bird->dog 1 (ties in class order)
    m = write_report(tmp_path / "fixed", Y_TRUE, Y_SCORE, NAMES)
    assert m["confused_pairs"] == [
        {"true": "cat", "predicted": "dog", "count": 1},
        {"true": "bird", "predicted": "cat", "count": 1},
        {"true": "bird", "predicted": "dog", "count": 1},
    ]
    keras.utils.set_random_seed(0)
    model = create_model("lenet5", input_shape=(16, 16, 1), num_classes=3)
    images = np.random.default_rng(0).uniform(0, 1, (30, 16, 16, 1)).astype("float32")
    y_true = np.arange(30) % 3
    scores = np.asarray(model(images))
    about = {"model": "lenet5 (test)", "data": "30 random images"}
    m = write_report(
        tmp_path / "r", y_true, scores, NAMES, images=images, model=model, top_losses=5, about=about
    )
    losses = [row["loss"] for row in m["top_losses"]]
    assert len(losses) == 5 and losses == sorted(losses, reverse=True)
    worst = int(np.argmax(-np.log(scores[np.arange(30), y_true])))
    assert m["top_losses"][0]["index"] == worst
    assert m["top_losses_note"] == "Grad-CAM of the predicted class"
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["top_losses"] == m["top_losses"]

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids, self.srcs, self.text = set(), [], ""

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.ids.add(attrs.get("id"))
            if tag == "img":
                self.srcs.append(attrs["src"])

        def handle_data(self, data):
            self.text += data

    page = Page()
    page.feed((tmp_path / "r" / "report.html").read_text())
    assert {"about", "confused", "top-losses", "worst-classes"} <= page.ids
    assert page.srcs and all(src.startswith("data:image/png;base64,") for src in page.srcs)
    assert "lenet5 (test)" in page.text and "Most confused pairs" in page.text
    assert (tmp_path / "r" / "top_losses.png").read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Top losses" in md and "## Most confused pairs" in md


def test_an_image_grid_shows_each_image_in_its_cell():
    """The report's grids are one picture: each image lands in its own cell (a blank cell
    stays white), a heatmap tints its image, and the figure is the size asked."""
    import io

    from PIL import Image

    from cnnkeras._figures import Tile, tiles_png

    red, blue = np.zeros((8, 8, 3)), np.zeros((8, 8, 3))
    red[..., 0], blue[..., 2] = 1, 1
    grey = np.linspace(0, 1, 64).reshape(8, 8, 1)
    rows = [[Tile(red, "red"), None], [Tile(blue, "blue"), Tile(grey, "hot", np.ones((8, 8)))]]
    page = np.asarray(Image.open(io.BytesIO(tiles_png(rows, inches=(2.0, 2.2)))).convert("RGB"))
    assert page.shape[:2] == (440, 400)  # 2 x 2 cells of 2.0 x 2.2 inches at 100 dpi
    top, bottom = page[:220], page[220:]

    def share(cells, rgb):
        return float(np.mean(np.all(np.abs(cells.astype(int) - rgb) < 8, axis=-1)))

    assert share(top[:, :200], (255, 0, 0)) > 0.4 and share(top[:, :200], (0, 0, 255)) == 0
    assert share(top[:, 200:], (255, 255, 255)) > 0.99  # the blank cell
    assert share(bottom[:, :200], (0, 0, 255)) > 0.4
    hot = bottom[:, 200:].astype(int)
    assert share(bottom[:, 200:], (255, 255, 255)) < 0.7 and (hot[..., 0] > hot[..., 2] + 40).any()
