"""The accuracy a phone sees: a colour MobileNet v2 trained on real photos (tests/photos.py, 90
small crops a class plus 10 at 1,000-1,400 pixels) with each resize of the pipeline, exported,
and its test split classified three ways: by the Keras model through cnnkeras's pipeline, by the
float32 and int8 files in the LiteRT Interpreter (same pipeline), and by MediaPipe Tasks'
ImageClassifier on the original files (its own decoding and resizing, as in an app).

    python tests/benchmarks/phone_accuracy.py [--seeds 42,43] [--epochs 15] [--decode fast]
        [--resizes antialias,phone]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from photos import make_photo_folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="42,43")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--per-class", type=int, default=90)
    parser.add_argument("--decode", choices=("accurate", "fast"), default="accurate")
    parser.add_argument("--resizes", default="antialias,phone")
    args = parser.parse_args()
    from cnnkeras._spawn import import_tensorflow_quietly

    import_tensorflow_quietly()
    if args.decode == "fast":  # TensorFlow's default JPEG decoding, as the pipeline had it
        import tensorflow as tf

        from cnnkeras.data import _pipeline

        def fast(encoded):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            image.set_shape((None, None, 3))
            return image

        _pipeline._decode = fast
    from cnnkeras.export import export_model
    from cnnkeras.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        root = make_photo_folder(Path(tmp) / "photos", per_class=args.per_class, large=10)
        for seed in map(int, args.seeds.split(",")):
            for resize in args.resizes.split(","):
                config = TrainConfig(
                    arch="mobilenet_v2",
                    dataset=f"folder:{root}",
                    image_size=64,
                    epochs=args.epochs,
                    seed=seed,
                    resize=resize,
                    model_options={"alpha": 0.35},
                )
                run = Path(tmp) / f"{resize}-{seed}"
                started = time.perf_counter()
                result = train(config, run_dir=run, verbose=0)
                report = export_model(
                    run / "model.keras", variants="int8", out=Path(tmp) / f"t-{resize}", verbose=0
                )
                row = {"resize": resize, "decode": args.decode, "seed": seed}
                row["keras"] = report["keras_accuracy"]
                for variant in ("float32", "int8"):
                    v = report["variants"][variant]
                    row[variant] = v["accuracy"]
                    row[f"{variant}_phone"] = v["phone_accuracy"]
                    row[f"{variant}_phone_agreement"] = v["phone_agreement"]
                row["test_images"] = report["test_images"]
                row["train_accuracy_result"] = result["test_accuracy"]
                row["seconds"] = round(time.perf_counter() - started, 1)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
