"""What ``--help`` says: each command's one-line summary, its description and its examples,
and the formatter that prints them.

Apart from the parser so that ``cnnkeras --help`` imports nothing heavy, and one table so that
the tests can parse every example with the real parser (tests/test_help.py): an example that
stops matching the flags fails there, not in a user's terminal.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from dataclasses import dataclass

from cnnkeras._options import with_default


@dataclass(frozen=True)
class Help:
    summary: str  # the line in the parent's list of commands
    description: str  # what it does and writes; paragraphs are wrapped to the terminal
    examples: tuple[str, ...] = ()  # command lines, each optionally ending in "# what it does"

    def epilog(self) -> str | None:
        if not self.examples:
            return None
        return "examples:\n" + "\n".join(f"  {example}" for example in self.examples)


class Formatter(argparse.HelpFormatter):
    """argparse's layout, at most 100 columns, with no word broken across lines, example
    blocks (lines that start with two spaces) printed as written, and each flag's default
    from its ``default`` in the one style of ``with_default`` (a flag whose help already
    says it, and switches, are left as they are)."""

    def __init__(self, prog: str):
        width = min(shutil.get_terminal_size().columns, 100) - 2
        super().__init__(prog, max_help_position=32, width=max(width, 40))

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if "(default: " in help or action.nargs == 0:
            return help
        return with_default(help, action.default)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(
            " ".join(text.split()), width, break_long_words=False, break_on_hyphens=False
        )

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if any(line.startswith("  ") for line in block.splitlines()):
                blocks.append("\n".join(indent + line for line in block.splitlines()))
            else:
                blocks.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                )
        return "\n\n".join(blocks)


RUN = "saved_models/lenet5-mnist5k-20261206-183405"  # a run folder, as train names them
EXPORT = "tflite/lenet5-mnist5k-20261206-183405"  # its export folder

TOP = Help(
    "",
    "Learn, train, evaluate and ship the convolutional neural networks of a CNN lecture "
    "(LeNet-5, AlexNet, VGG, GoogLeNet, ResNet, MobileNet, EfficientNet) with Keras 3: train "
    "them on your own photos with model.fit, search their options with Keras Tuner, read "
    "scikit-learn reports, and export TFLite files that phone apps take as they are.\n\n"
    "`cnnkeras COMMAND --help` shows a command's options and examples; `cnnkeras docs` lists "
    "the guides shipped with it (offline).",
    (
        "cnnkeras train  # LeNet-5 on 5,000 MNIST digits, offline, 1-2 minutes",
        "cnnkeras train --dataset folder:photos --arch mobilenet_v2 --image-size 96",
        f"cnnkeras evaluate {RUN}/model.keras",
        f"cnnkeras export {RUN}/model.keras --quantize all",
        f"cnnkeras predict {EXPORT}/model_int8.tflite photo.jpg",
        f"cnnkeras serve {EXPORT}  # the model in a browser app, on a phone too",
    ),
)


def demo_help(name: str, summary: str, description: str, quick: str) -> Help:
    """The help of ``cnnkeras demo NAME`` (a demo's declaration in cnnkeras.demos.DEMOS:
    an empty ``description`` is said from the summary; ``quick``: options for a quick look)."""
    return Help(
        summary,
        description
        or f"The lecture's claim, measured: {summary}. Trains small networks that differ only "
        "in that block, on mnist5k at 28x28, with the same optimizer, rate, batches and "
        "epochs, over several seeds; prints the table and whether the claim held, and draws "
        "the training curves side by side.",
        (
            f"cnnkeras demo {name}",
            f"cnnkeras demo {name} {quick}  # a quick look",
            f"cnnkeras demo {name} --plot {name}.png --json",
        ),
    )


HELP: dict[tuple[str, ...], Help] = {
    ("models",): Help(
        "list the registered architectures",
        "The zoo: each architecture's family, default input, parameters, MACs and paper. A "
        "shell-style pattern filters the names.",
        (
            "cnnkeras models",
            "cnnkeras models '*resnet*'",
            "cnnkeras models 'mobilenet*' --measure  # build each one and count again",
            "cnnkeras models --json",
        ),
    ),
    ("summary",): Help(
        "every layer's output shape, parameters and MACs",
        "Builds one architecture (the paper's configuration unless told otherwise) and lists "
        "its layers with output shape, parameters and multiply-accumulates.",
        (
            "cnnkeras summary lenet5",
            "cnnkeras summary resnet18 --input-shape 64,64,3 --classes 10",
            "cnnkeras summary mobilenet_v2 --set alpha=0.35 --json",
        ),
    ),
    ("train",): Help(
        "train an architecture with model.fit into a run folder",
        "Trains with model.fit and writes a run folder (saved_models/ARCH-DATASET-TIME/): the "
        "best epoch's model.keras, config.json (every option and what auto chose), "
        "splits.json, history.csv, curves and the test split's report. What auto chooses is "
        "printed first. With no options: LeNet-5 on the 5,000 MNIST digits shipped offline.\n\n"
        "Your photos: folder:PATH with one sub-folder per class (photos/cat/1.jpg, "
        "photos/dog/2.jpg), or already split (photos/train/cat/..., photos/val/..., "
        "photos/test/...). For a few hundred photos, `cnnkeras finetune` is usually better. "
        "`cnnkeras docs photos` and `cnnkeras docs training` say more.",
        (
            "cnnkeras train  # the main job: LeNet-5 on mnist5k",
            "cnnkeras train --dataset folder:photos --arch mobilenet_v2 --image-size 96",
            "cnnkeras train --arch resnet18 --dataset tfds:cifar10 --image-size 32 --epochs 20",
            "cnnkeras train --lr auto --mixup 0.2 --ema 0.999 --target-accuracy 0.99",
            f"cnnkeras train --resume {RUN}  # after a crash or a kill",
        ),
    ),
    ("launch",): Help(
        "run train as N processes of a multi-host run on this machine",
        "Starts N local processes of `train --distribute multi-host` on the JAX backend "
        "(keras.distribution), prints process 0's output, keeps the others' in log files and "
        "stops them all when one fails. Several machines: `cnnkeras docs distributed`.",
        (
            "cnnkeras launch --processes 2 -- train --dataset digits --image-size 16 --epochs 5",
            f"cnnkeras launch --processes 2 -- train --resume {RUN}",
            "cnnkeras launch --processes 2 --port 29500 -- train",
        ),
    ),
    ("lr-find",): Help(
        "learning-rate range test: the loss against the rate",
        "Trains for a few hundred steps while the learning rate grows from 1e-7 to 10, with "
        "train's optimizer, batches and augmentation, then puts the weights back; plots the "
        "loss against the rate and suggests one (the steepest descent before the minimum). "
        "`train --lr auto` runs it first. Takes every train option.",
        (
            "cnnkeras lr-find",
            "cnnkeras lr-find --arch mobilenet_v2 --image-size 32 --plot mobilenet_lr.png",
            "cnnkeras lr-find --dataset folder:photos --optimizer sgd --steps 200",
        ),
    ),
    ("finetune",): Help(
        "transfer learning: a new head on a pre-trained base, then its top",
        "Phase 1 trains a new classifier on the frozen base (batch norm in inference mode); "
        "phase 2 (--epochs-finetune) also trains the top of the base at a lower rate. The "
        "route for a few hundred photos. Writes a run folder as train does, plus "
        "trainable_layers.json. imagenet:NAME bases need a network on first use.",
        (
            f"cnnkeras finetune --base {RUN}/model.keras --dataset folder:photos",
            f"cnnkeras finetune --base {RUN}/model.keras --dataset folder:photos "
            "--epochs-head 10 --epochs-finetune 10 --unfreeze all",
            "cnnkeras finetune --base imagenet:mobilenet_v2 --dataset tfds:tf_flowers "
            "--image-size 160 --epochs-finetune 5 --unfreeze-top 20 --lr-finetune 1e-5",
        ),
    ),
    ("tune",): Help(
        "Keras Tuner search of builder and training options",
        "Searches an architecture's builder options and training options with Keras Tuner "
        "(random, hyperband or bayesian), each trial trained as train trains. Experiments are "
        "TOML files (tuning/README.md lists their fields); options given here override the "
        "file's. Results go to tuning/runs/NAME/; the same command after a kill continues "
        "the search.",
        (
            "cnnkeras tune tuning/lenet5_mnist5k.toml",
            "cnnkeras tune --arch vgg16 --dataset digits --tuner hyperband --epochs 6 "
            "--image-size 32",
            "cnnkeras tune tuning/lenet5_mnist5k.toml --workers 2  # chief + 2 workers",
            "cnnkeras tune tuning/lenet5_mnist5k.toml --retrain-best --seeds 3",
        ),
    ),
    ("data",): Help(
        "look at a dataset before training on it",
        "`data check` finds copies, leakage and odd files; `data preview` draws the first "
        "training batch as the model sees it.",
    ),
    ("data", "preview"): Help(
        "the first training batch as the model sees it",
        "Draws the first 16 images of the first training step, augmented (MixUp and CutMix "
        "included) and labelled, as train's pipeline makes them, without training.",
        (
            "cnnkeras data preview folder:photos --image-size 64",
            "cnnkeras data preview mnist5k --augment auto,mixup --out batch.png",
            "cnnkeras data preview folder:photos --no-augment",
        ),
    ),
    ("data", "check"): Help(
        "copies, leakage, sizes, colour and unreadable files",
        "Splits the data as train would (same seed) and looks at every image once: class "
        "counts, sizes per class, grey files among colour ones, files stored turned, "
        "unreadable files, and pictures that appear twice: in a class, under two labels, or "
        "in training and in validation or test (leakage). Writes data_check.html and "
        "data_check.json.",
        (
            "cnnkeras data check folder:photos",
            "cnnkeras data check folder:photos --fix-leakage  # a label file without them",
            "cnnkeras data check csv:labels.csv --out checks --json",
        ),
    ),
    ("demo",): Help(
        "the lecture's claims, measured",
        "Each demo trains small networks that differ only in one building block and says "
        "whether the lecture's claim held; `demo transfer` measures transfer learning.",
    ),
    ("compare",): Help(
        "train, evaluate and export architectures alike; Pareto fronts",
        "Trains each architecture as train does (same split, recipe and seeds), evaluates it "
        "on the same test split, exports it to int8 TFLite and measures parameters, MACs, "
        "training time, accuracy, latency and size; writes comparison.csv, .md and .html and "
        "accuracy against MACs and against latency with the Pareto front. --budget-minutes "
        "gives each run the same training time. The same command after a kill trains only "
        "the missing rows.",
        (
            "cnnkeras compare --dataset mnist5k --archs lenet5,mobilenet_v2 --image-size 32 "
            "--budget-minutes 2",
            "cnnkeras compare --dataset folder:photos --all --image-size 96 --budget-minutes 5 "
            "--seeds 3",
            "cnnkeras compare --dataset digits --archs lenet5,vgg16 --epochs 5 "
            "--set vgg16.filters=16",
        ),
    ),
    ("evaluate",): Help(
        "metrics, plots and a report of a saved model",
        "Scores a .keras or .tflite model on a split (by default the test split its run held "
        "out) and writes metrics.json, report.md and a self-contained report.html: precision, "
        "recall and F1 per class, confusion matrices, precision-recall curves and mAP, "
        "calibration, the misclassified images and the top losses with Grad-CAM.",
        (
            f"cnnkeras evaluate {RUN}/model.keras",
            f"cnnkeras evaluate {EXPORT}/model_int8.tflite  # the phone file, in LiteRT",
            f"cnnkeras evaluate {RUN}/model.keras --tta",
            f"cnnkeras evaluate {RUN}/model.keras --unknown folder:other_photos",
        ),
    ),
    ("inspect",): Help(
        "Grad-CAM, feature maps and filters of a model on images",
        "For each image (any size or colour mode; the run's preprocessing is applied): the "
        "top classes, the Grad-CAM heatmap of the predicted class, the strongest activation "
        "maps of every stage with their receptive fields, and the first layer's filters; "
        "written to inspect/ beside the model.",
        (
            f"cnnkeras inspect {RUN}/model.keras digit.png",
            f"cnnkeras inspect {RUN}/model.keras digit.png --class 7 --layer c3",
            f"cnnkeras inspect {RUN}/model.keras a.png b.png --layers c1,c3 --json",
        ),
    ),
    ("bench",): Help(
        "measure speed",
        "`bench train`: the training throughput of train's default path; `bench infer`: the "
        "single-image latency of a saved model.",
    ),
    ("bench", "train"): Help(
        "the training throughput of train's default path",
        "Times whole epochs of model.fit on synthetic images as train runs them (its steps "
        "per execution), and keeps the median.",
        (
            "cnnkeras bench train",
            "cnnkeras bench train --arch resnet18 --image-size 64 --steps 32 --precision bfloat16",
            "cnnkeras bench train --arch mobilenet_v2 --set alpha=0.35 --image-size 64 --steps 4 "
            "--val-images 500",
        ),
    ),
    ("bench", "infer"): Help(
        "the single-image latency of a .tflite or .keras model",
        "Runs one image at a time after a warm-up and reports the median and spread of the "
        "latency.",
        (
            f"cnnkeras bench infer {EXPORT}/model_int8.tflite",
            f"cnnkeras bench infer {EXPORT}/model_float32.tflite --threads 2 --runs 500",
            f"cnnkeras bench infer {RUN}/model.keras --json",
        ),
    ),
    ("export",): Help(
        "TFLite (LiteRT) files for phones, with measured parity",
        "Converts a trained model to .tflite files with the metadata MediaPipe Tasks reads "
        "(labels, normalisation, RGB input), measures each against the Keras model on the "
        "test split, in LiteRT and in MediaPipe's ImageClassifier, and writes them with "
        "labels.txt, preprocess.json, golden images, parity.json and a model card into "
        "tflite/MODEL/. A refused export leaves the folder as it was.",
        (
            f"cnnkeras export {RUN}/model.keras",
            f"cnnkeras export {RUN}/model.keras --quantize all  # float32 float16 dynamic int8",
            f"cnnkeras export {RUN}/model.keras --quantize int8 --int-io int8",
            f'cnnkeras export {RUN}/model.keras --author "Ada Lovelace" --license MIT '
            "--out app/assets",
            f"cnnkeras export {RUN}/model.keras --quantize all --web  # copy the folder to a host",
        ),
    ),
    ("serve",): Help(
        "the export in a browser app, on this computer or a phone",
        "Serves a page that classifies photos (or the camera's frames) with the export's "
        ".tflite files in LiteRT.js, LiteRT compiled to WebAssembly: top classes with bars, "
        "the latency, a file picker (float32, float16, int8, ...) and a self-test that runs "
        "the golden images against the Python runtime's scores. Read-only; listens on "
        "127.0.0.1 unless --bind says otherwise; Ctrl-C stops it. On a phone: --bind 0.0.0.0 "
        "and open the printed address (photos work over http; the live camera needs https "
        "or localhost).",
        (
            f"cnnkeras serve {EXPORT}  # then open http://localhost:8000/",
            f"cnnkeras serve {EXPORT} --bind 0.0.0.0  # a phone on the same network",
            f"cnnkeras serve {EXPORT} --port 0  # any free port",
        ),
    ),
    ("predict",): Help(
        "classify image files with a .keras or .tflite model",
        "Prints the top classes of each image, preprocessed as the model's run recorded "
        "(phone photos read upright). A file that cannot be read is an error line and exit "
        "status 1; the others are still classified.",
        (
            f"cnnkeras predict {RUN}/model.keras digit.png",
            f"cnnkeras predict {EXPORT}/model_int8.tflite a.jpg b.png --top-k 1",
            f"cnnkeras predict {RUN}/model.keras digit.png --threshold auto  # or unknown",
            f"cnnkeras predict {RUN}/model.keras digit.png --tta --json",
        ),
    ),
    ("explain",): Help(
        "the lecture's calculators",
        "Output sizes, feature maps, the cost of separable convolutions, receptive fields "
        "and EfficientNet's compound scaling, each worked step by step.",
    ),
    ("explain", "conv"): Help(
        "a convolution's output size, or a feature map step by step",
        "With --input and --kernel: the output size (W - F + 2P) / S + 1, what happens when "
        "it is not an integer, and the padding that keeps the size. With --image and "
        "--filter: the feature map, each step, checked against a Keras Conv2D.",
        (
            "cnnkeras explain conv --input 8 --kernel 3 --stride 2",
            "cnnkeras explain conv --input 32 --kernel 5 --padding same",
            'cnnkeras explain conv --image "1 2 3; 4 5 6; 7 8 9" --filter "1 0; 0 -1"',
        ),
    ),
    ("explain", "separable"): Help(
        "standard against depthwise-separable convolution: parameters and MACs",
        "Counts the parameters and multiply-accumulates of a standard convolution and of its "
        "depthwise-separable twin, and their ratio against the lecture's 1/N + 1/F^2.",
        (
            "cnnkeras explain separable --input 112 --kernel 3 --in-channels 32 --out-channels 64",
            "cnnkeras explain separable --input 14 --kernel 5 --in-channels 512 --out-channels 512",
            "cnnkeras explain separable --input 56 --kernel 3 --in-channels 64 "
            "--out-channels 128 --json",
        ),
    ),
    ("explain", "receptive-field"): Help(
        "stacked small kernels against one large: the VGG argument",
        "n stacked KxK convolutions see 1 + n(K - 1) pixels: each stack's parameters against "
        "those of the one convolution that sees as far.",
        (
            "cnnkeras explain receptive-field",
            "cnnkeras explain receptive-field --kernel 3 --layers 2 --channels 64",
            "cnnkeras explain receptive-field --layers 5 --json",
        ),
    ),
    ("explain", "scaling"): Help(
        "EfficientNet's compound scaling of depth, width and resolution",
        "Depth, width and resolution grow as alpha^phi, beta^phi and gamma^phi, with alpha "
        "beta^2 gamma^2 about 2, so FLOPs about double with each step of phi; prints the "
        "multipliers for --phi and the published B0 to B7 grid.",
        (
            "cnnkeras explain scaling",
            "cnnkeras explain scaling --phi 1.5",
            "cnnkeras explain scaling --phi 1 --json",
        ),
    ),
    ("docs",): Help(
        "print a guide shipped with cnnkeras (offline)",
        "Without a topic, lists the guides; with one, prints it (Markdown).",
        ("cnnkeras docs", "cnnkeras docs photos", "cnnkeras docs training"),
    ),
}
