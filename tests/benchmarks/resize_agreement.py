"""Does the pipeline see what MediaPipe sees? One colour MobileNet v2 trained on real photos
(tests/photos.py, 90 small crops a class and 10 at 1,000-1,400 pixels, phone resize), exported
to float32 and int8; then every image of its training split is classified by MediaPipe Tasks'
ImageClassifier (PIL decoding, MediaPipe's resizing) and by the same file in the LiteRT
Interpreter on cnnkeras's pipeline with each resize. Counts the images whose answers differ.

    python tests/benchmarks/resize_agreement.py [--out DIR]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from photos import make_photo_folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    args = parser.parse_args()
    from cnnkeras._spawn import import_tensorflow_quietly

    import_tensorflow_quietly()
    import dataclasses

    import numpy as np

    from cnnkeras.data import load_dataset
    from cnnkeras.export import TFLiteModel, convert
    from cnnkeras.export._export import representative_sample
    from cnnkeras.export._metadata import ClassifierMetadata, metadata_bytes, populate
    from cnnkeras.export._runtimes import mediapipe_scores
    from cnnkeras.saved import load_run_model, predict_split
    from cnnkeras.train import TrainConfig, train

    out = Path(args.out or tempfile.mkdtemp())
    root = out / "photos"
    if not root.is_dir():
        make_photo_folder(root, per_class=90, large=10)
    if not (out / "run" / "model.keras").is_file():
        config = TrainConfig(
            arch="mobilenet_v2",
            dataset=f"folder:{root}",
            image_size=64,
            epochs=15,
            model_options={"alpha": 0.35},
        )
        train(config, run_dir=out / "run", verbose=0)
    model, prep, names, record = load_run_model(out / "run" / "model.keras")
    split = load_dataset(f"folder:{root}", seed=record["seed"]).splits["train"]
    about = ClassifierMetadata("m", "d", "1", "a", "l", mean=0.0, std=1 / prep.scale)
    labels = {"labels.txt": ("\n".join(names) + "\n").encode()}
    sample = representative_sample(split, prep, len(names), 200, 0)
    for variant in ("float32", "int8"):
        blob = convert(model, variant, sample)
        path = out / f"model_{variant}.tflite"
        path.write_bytes(populate(blob, metadata_bytes(about), labels))
        phone, _ = mediapipe_scores(path, list(split.paths), len(names))
        for resize in ("phone", "antialias"):
            scores, kept = predict_split(
                TFLiteModel(blob).predict, split, dataclasses.replace(prep, resize=resize)
            )
            differ = int((scores.argmax(1) != phone[kept].argmax(1)).sum())
            row = {"variant": variant, "pipeline resize": resize, "images": len(kept)}
            row["answers that differ"] = differ
            row["max score difference"] = round(float(np.abs(scores - phone[kept]).max()), 4)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
