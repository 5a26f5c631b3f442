"""The ``cnnkeras`` command line: parse arguments, call the library, print.

Every subcommand calls one public function and prints its result, as text (the library's
``*_text`` renderers) or with ``--json`` as one JSON line. The train, finetune and tune
options are generated from their config dataclasses (``cnnkeras._options``). Library errors
name parameters in backticks; ``as_flags`` turns them into this command line's flags, and a
user mistake is one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Sequence

from cnnkeras._options import add_options, as_flags, given, key_value
from cnnkeras._spawn import import_tensorflow_quietly
from cnnkeras.errors import UserError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line that says where to look for help."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


# ---------------------------------------------------------------- argument types


def _shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) == 2:
        shape = (*shape, 3)
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W,C like 224,224,3, got {text!r}")
    return shape


def _arch_option(text: str) -> tuple[str, str, object]:
    key, value = key_value(text)
    arch, dot, name = key.partition(".")
    if not (arch and dot and name):
        raise argparse.ArgumentTypeError(f"expected ARCH.KEY=VALUE, got {text!r}")
    return arch, name, value


def _threshold(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected auto or a score in [0, 1], got {text!r}")
    return value


# ---------------------------------------------------------------- commands
# Each returns (what --json prints, the text otherwise[, exit status]).


def _verbose(args) -> int:
    return 0 if args.quiet or args.json else 1


def cmd_models(args):
    from cnnkeras.models import zoo_table, zoo_text

    rows = zoo_table(args.pattern, measure=args.measure)
    return {"models": rows}, zoo_text(rows)


def cmd_summary(args):
    from cnnkeras.models import create_model, layer_table, model_totals, summary_text

    options = dict(args.set or [])
    if args.input_shape:
        options["input_shape"] = args.input_shape
    if args.classes:
        options["num_classes"] = args.classes
    model = create_model(args.name, **options)
    rows, total = layer_table(model), model_totals(model)
    shape = list(model.input_shape[1:])
    result = {"model": args.name, "input_shape": shape, "layers": rows, "total": total}
    return result, summary_text(rows, total)


def cmd_explain(args):
    from cnnkeras import explain

    if args.topic == "conv" and (args.image is not None or args.filter is not None):
        if args.image is None or args.filter is None:
            raise UserError("give both --image and --filter, or --input and --kernel")
        image = explain.parse_matrix(args.image, "image")
        kernel = explain.parse_matrix(args.filter, "filter")
        r = explain.conv_feature_map(image, kernel, stride=args.stride, padding=args.padding)
        return r, explain.conv_feature_map_text(r)
    if args.topic == "conv":
        if args.input is None or args.kernel is None:
            raise UserError("give --input W and --kernel F (or --image and --filter)")
        r = explain.conv_output(args.input, args.kernel, args.stride, args.padding)
        return r, explain.conv_output_text(r)
    if args.topic == "separable":
        r = explain.separable_cost(args.input, args.kernel, args.in_channels, args.out_channels)
        return r, explain.separable_cost_text(r)
    if args.topic == "receptive-field":
        r = explain.receptive_field(args.kernel, args.layers, args.channels)
        return r, explain.receptive_field_text(r)
    r = explain.compound_scaling(args.phi)
    return r, explain.compound_scaling_text(r)


def cmd_train(args):
    from cnnkeras.train import TrainConfig, resume, train

    options = given(args, TrainConfig)
    if args.resume:
        conflicting = sorted(set(options) - {"dataset"})
        if conflicting:
            raise UserError(
                f"`resume` continues a run with the options it recorded; drop "
                f"{', '.join(f'`{name}`' for name in conflicting)} (only `dataset` may "
                "change, to where a folder run's images moved)"
            )
        return resume(args.resume, dataset=options.get("dataset"), verbose=_verbose(args)), ""
    config = TrainConfig(**options)
    return train(config, verbose=_verbose(args)), ""


PREVIEW_OPTIONS = (
    "arch",
    "image_size",
    "resize",
    "augment",
    "mixup",
    "cutmix",
    "seed",
    "batch_size",
)


def cmd_data_preview(args):
    from cnnkeras.train import TrainConfig
    from cnnkeras.train._preview import preview

    config = TrainConfig(dataset=args.spec, **given(args, TrainConfig))
    r = preview(config, args.out, verbose=_verbose(args))
    return r, f"first training batch ({', '.join(r['augment']) or 'no augmentation'}): {r['png']}"


def cmd_data_check(args):
    from cnnkeras.data import DEFAULT_SEED, data_check
    from cnnkeras.train import TrainConfig

    seed = given(args, TrainConfig).get("seed", DEFAULT_SEED)
    fix, verbose = args.fix_leakage, _verbose(args)
    r = data_check(args.spec, args.out, seed=seed, fix_leakage=fix, verbose=verbose)
    lines = [r["summary"], *(f"  {w}" for w in r["warnings"]), f"report: {r['html']}"]
    if args.fix_leakage:
        fixed = r["fixed"]
        lines.append(
            f"without the leaked images: {fixed} (train on it: --dataset csv:{fixed})"
            if fixed
            else "no validation or test image repeats a training one: nothing to fix"
        )
    return r, "\n".join(lines)


def cmd_launch(args):
    from cnnkeras._launch import launch

    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if rest[:1] != ["train"]:
        raise UserError("`launch` runs `train`: cnnkeras launch --processes N -- train OPTIONS")
    if "--resume" not in rest and "--distribute" not in rest:
        rest = [*rest, "--distribute", "multi-host"]
    command = [sys.executable, "-m", "cnnkeras", *rest]
    return (
        None,
        "",
        launch(command, args.processes, port=args.port, bind=args.bind, force=args.force),
    )


LAUNCH_HELP = "run `train` as N processes of a multi-host run here"


def _launch_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--processes", type=int, required=True, metavar="N")
    p.add_argument("--port", type=int, help="the coordinator's port (default: a free one)")
    bind_help = "the coordinator listens here (default 127.0.0.1; 0.0.0.0 for other machines)"
    p.add_argument("--bind", metavar="ADDRESS", help=bind_help)
    force_help = "start more processes than this machine has CPU cores"
    p.add_argument("--force", action="store_true", help=force_help)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="-- train OPTIONS")
    p.set_defaults(func=cmd_launch, json=False, quiet=False)
    return p


def cmd_lr_find(args):
    from cnnkeras.train import TrainConfig, lr_find

    config = TrainConfig(**given(args, TrainConfig))
    found = lr_find(config, steps=args.steps, plot=args.plot, verbose=_verbose(args))
    return {**found.to_dict(), "plot": args.plot}, f"{found.text()}\nplot: {args.plot}"


def cmd_finetune(args):
    from cnnkeras.train import FinetuneConfig, finetune

    config = FinetuneConfig(**given(args, FinetuneConfig))
    return finetune(config, verbose=_verbose(args)), ""


def cmd_tune(args):
    from cnnkeras.tuning import Experiment, load_experiment, retrain_best, run_search

    values = given(args, Experiment)
    experiment = (
        load_experiment(args.experiment, **values) if args.experiment else Experiment(**values)
    )
    kwargs = {"workers": args.workers, "host": args.host, "verbose": _verbose(args)}
    result = run_search(experiment, max_memory_growth_mb=args.max_memory_growth_mb, **kwargs)
    if args.retrain_best and result:
        result["retrained"] = retrain_best(
            experiment, seeds=args.seeds, baseline=args.baseline, verbose=_verbose(args)
        )
    return result, ""


def cmd_demo(args):
    if args.what == "transfer":
        from cnnkeras.train import demo_table, transfer_demo

        result = transfer_demo(args.k, tuple(range(args.seeds)))
        return result, demo_table(result)
    from cnnkeras.demos import demo_text, run_demo

    options = {"epochs": args.epochs} if args.epochs is not None else {}
    plot = args.plot or f"saved_models/demo-{args.what}.png"
    result = run_demo(args.what, tuple(range(args.seeds)), plot=plot, **options)
    return result, demo_text(result)


def cmd_compare(args):
    from cnnkeras.compare import compare, compare_text

    options: dict[str, dict] = {}
    for arch, key, value in args.set or []:
        options.setdefault(arch, {})[key] = value
    archs = None if args.all else [a.strip() for a in args.archs.split(",") if a.strip()]
    result = compare(
        args.dataset,
        archs,
        image_size=args.image_size,
        epochs=args.epochs,
        budget_minutes=args.budget_minutes,
        seeds=args.seeds,
        model_options=options,
        out=args.out,
        verbose=_verbose(args),
    )
    return result, compare_text(result)


def cmd_evaluate(args):
    from cnnkeras.evaluate import evaluate_model, summary_lines

    options = {"split": args.split, "out": args.out, "top_losses": args.top_losses, "tta": args.tta}
    options["unknown"] = args.unknown
    m = evaluate_model(args.model, args.dataset, **options)
    title = f"{args.model} on {m['dataset']} ({args.split})"
    text = [*summary_lines(m, title)[2:], f"report: {m['report_dir']}/report.html"]
    return m, "\n".join(text)


def cmd_inspect(args):
    from cnnkeras.interpret import inspect_images, inspect_text

    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    options = {"top_k": args.top_k, "class_name": args.class_name, "layer": args.layer}
    r = inspect_images(args.model, args.images, out=args.out, layers=layers, **options)
    return r, inspect_text(r)


def cmd_export(args):
    from cnnkeras.export import export_model, export_text

    keys = ("dataset", "samples", "out", "int_io", "input", "author", "license")
    options = {k: getattr(args, k) for k in keys}
    options["int8_repair"] = args.int8_repair == "on"
    report = export_model(args.model, variants=args.quantize, verbose=_verbose(args), **options)
    return report, export_text(report)


def cmd_predict(args):
    from cnnkeras.predict import predict_files, predict_text

    options = {"top_k": args.top_k, "tta": args.tta, "threshold": args.threshold}
    results = predict_files(args.model, args.images, **options)
    failed = [r for r in results if "error" in r]
    for r in failed if not args.json else []:
        print(f"{r['image']}: error: {r['error']}", file=sys.stderr)
    return {"results": results}, predict_text(results), 1 if failed else 0


def cmd_bench(args):
    if args.what == "infer":
        from cnnkeras.export import bench_infer, bench_infer_text

        r = bench_infer(args.model, threads=args.threads, runs=args.runs)
        return r, bench_infer_text(r)
    from cnnkeras.bench import bench_train, bench_train_text

    names = ("batch_size", "image_size", "steps", "val_images", "repeats", "steps_per_execution")
    r = bench_train(args.arch, **{k: getattr(args, k) for k in names})
    return r, bench_train_text(r)


# ---------------------------------------------------------------- parser


DEMO_HELP = {
    "batchnorm": "the same net with and without batch norm, at two learning rates",
    "dropout": "train/validation gap with and without dropout",
    "activations": "a deep plain stack: sigmoid against ReLU",
    "residual": "plain against residual nets of 20 and 56 layers",
    "receptive-field": "one 5x5 convolution against two stacked 3x3",
    "separable": "standard against depthwise-separable convolution",
}

TTA_HELP = (
    "also average over test-time augmented copies that follow the run's augmentation, "
    "reported beside the plain result"
)


def build_parser() -> argparse.ArgumentParser:
    from cnnkeras.demos import DEMOS
    from cnnkeras.train import FinetuneConfig, TrainConfig
    from cnnkeras.train._lr_find import STEPS as LR_FIND_STEPS
    from cnnkeras.tuning import MEMORY_GROWTH_MB, Experiment

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as one JSON line")
    common.add_argument("--quiet", action="store_true", help="no progress lines")
    parser = _Parser(prog="cnnkeras", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(parent, name: str, func, help: str) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, parents=[common])
        p.set_defaults(func=func)
        return p

    p = command(sub, "models", cmd_models, "list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. '*resnet*'")
    p.add_argument("--measure", action="store_true", help="build each model and count again")

    p = command(sub, "summary", cmd_summary, "per-layer output shape, parameters and MACs")
    p.add_argument("name")
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C")
    p.add_argument("--classes", type=int, metavar="N")
    set_help = "any builder option, e.g. --set alpha=0.5"
    p.add_argument("--set", type=key_value, action="append", metavar="KEY=VALUE", help=set_help)

    p = command(sub, "train", cmd_train, "train a model with model.fit into a run folder")
    add_options(p, TrainConfig)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")

    _launch_options(command(sub, "launch", cmd_launch, LAUNCH_HELP))

    p = command(sub, "lr-find", cmd_lr_find, "learning-rate range test: loss against the rate")
    add_options(p, TrainConfig)
    steps_help = f"steps of the test (default: {LR_FIND_STEPS}, as `train --lr auto`)"
    p.add_argument("--steps", type=int, default=LR_FIND_STEPS, help=steps_help)
    p.add_argument("--plot", default="lr_find.png", metavar="PNG", help="default: lr_find.png")

    p = command(sub, "finetune", cmd_finetune, "transfer learning: frozen base + new head")
    add_options(p, FinetuneConfig)

    p = command(sub, "tune", cmd_tune, "Keras Tuner search of kernel size, filters, dropout")
    p.add_argument("experiment", nargs="?", help="an experiment file (tuning/*.toml)")
    add_options(p, Experiment)
    workers_help = "run a chief oracle and N worker processes (Keras Tuner distributed)"
    p.add_argument("--workers", type=int, default=0, metavar="N", help=workers_help)
    p.add_argument("--host", default="127.0.0.1", help="the chief's address (loopback)")
    p.add_argument(
        "--max-memory-growth",
        dest="max_memory_growth_mb",
        type=float,
        default=MEMORY_GROWTH_MB,
        metavar="MIB",
        help="a search process that has grown this much since its first trial hands over to a "
        "fresh one (0: a fresh process for every trial; inf: one process)",
    )
    retrain_help = (
        "train the best configuration with train's epochs, and train's defaults beside it, "
        "into <dir>/retrained/; the test accuracies and the gain go to summary.md"
    )
    p.add_argument("--retrain-best", action="store_true", help=retrain_help)
    p.add_argument("--seeds", type=int, default=1, help="of each retrain (default: 1)")
    no_baseline = "retrain the best configuration only, without train's defaults"
    p.add_argument("--no-baseline", dest="baseline", action="store_false", help=no_baseline)

    data = sub.add_parser("data", help="look at a dataset before training on it")
    datasub = data.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = command(datasub, "preview", cmd_data_preview, "the first training batch, augmented")
    p.add_argument("spec", metavar="SPEC", help="as train's --dataset")
    add_options(p, TrainConfig, only=PREVIEW_OPTIONS)
    p.add_argument("--out", default="train_batch.png", metavar="PNG", help="default: %(default)s")
    check_help = "duplicates, conflicting labels, leakage, sizes, colour, unreadable files"
    p = command(datasub, "check", cmd_data_check, check_help)
    p.add_argument("spec", metavar="SPEC", help="as train's --dataset")
    add_options(p, TrainConfig, only=("seed",))
    out_help = "folder for data_check.html and .json (default: %(default)s)"
    p.add_argument("--out", default="data_check", metavar="DIR", help=out_help)
    fix_help = "write a label file without the validation/test images that repeat training ones"
    p.add_argument("--fix-leakage", action="store_true", help=fix_help)

    demo = sub.add_parser("demo", help="measured demonstrations")
    dsub = demo.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = command(dsub, "transfer", cmd_demo, "pre-trained vs scratch on few labelled images")
    p.add_argument("--k", type=int, default=10, help="labelled images per new class")
    p.add_argument("--seeds", type=int, default=3)
    for name, help in DEMO_HELP.items():
        p = command(dsub, name, cmd_demo, help)
        p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default: 3)")
        epochs = inspect.signature(DEMOS[name]).parameters["epochs"].default
        p.add_argument("--epochs", type=int, metavar="N", help=f"default: {epochs}")
        png_help = f"the training curves (default: saved_models/demo-{name}.png)"
        p.add_argument("--plot", metavar="PNG", help=png_help)

    p = command(sub, "compare", cmd_compare, "train, evaluate and export architectures alike")
    p.add_argument("--dataset", required=True, metavar="SPEC", help="as train's --dataset")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--archs", metavar="A,B,C", help="the architectures to compare")
    which.add_argument("--all", action="store_true", help="every registered architecture")
    p.add_argument("--image-size", type=int, metavar="N", help="default: each one's own")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, metavar="N", help="default: train's (auto)")
    budget_help = "the same wall-clock training budget for each architecture and seed"
    length.add_argument("--budget-minutes", type=float, metavar="M", help=budget_help)
    p.add_argument("--seeds", type=int, default=1, help="runs per architecture (default: 1)")
    p.add_argument(
        "--set",
        type=_arch_option,
        action="append",
        metavar="ARCH.KEY=VALUE",
        help="a builder option of one architecture, e.g. --set mobilenet_v2.alpha=0.35",
    )
    out_help = "default: saved_models/comparison-<dataset>/ (a rerun there continues)"
    p.add_argument("--out", metavar="DIR", help=out_help)

    p = command(sub, "evaluate", cmd_evaluate, "metrics, plots and a report for a saved model")
    p.add_argument("model", help="a .keras or .tflite file (its run's record is read)")
    p.add_argument("--dataset", metavar="SPEC", help="default: the one it was trained on")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--top-losses", type=int, default=16, metavar="N", help="images shown")
    p.add_argument("--tta", action="store_true", help=TTA_HELP)
    unknown_help = (
        "a dataset of none of the model's classes (as --dataset): how well the top score "
        "tells its images from the split's (AUROC), and how many a threshold lets through"
    )
    p.add_argument("--unknown", metavar="SPEC", help=unknown_help)

    p = command(sub, "inspect", cmd_inspect, "Grad-CAM, feature maps and filters of a model")
    p.add_argument("model", help="a .keras file of a run (its preprocessing and labels are used)")
    p.add_argument("images", nargs="+")
    p.add_argument("--out", metavar="DIR", help="default: inspect/ beside the model")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--class", dest="class_name", metavar="NAME", help="Grad-CAM of this too")
    cam_help = "Grad-CAM's layer (default: the last whose map is at least 2x2)"
    p.add_argument("--layer", metavar="NAME", help=cam_help)
    p.add_argument("--layers", metavar="A,B,C", help="feature maps of (default: each stage)")

    bench = sub.add_parser("bench", help="measure speed")
    bsub = bench.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = command(bsub, "train", cmd_bench, "training throughput of the default path")
    p.add_argument("--arch", default="lenet5")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int)
    p.add_argument("--steps", type=int, default=64, help="steps of one timed epoch")
    val_help = "validate on N images each epoch"
    p.add_argument("--val-images", type=int, default=0, metavar="N", help=val_help)
    spe_help = "default: as train chooses it (a divisor of the epoch's steps)"
    p.add_argument("--steps-per-execution", type=int, metavar="N", help=spe_help)
    p.add_argument("--repeats", type=int, default=7, help="timed epochs; the median is kept")
    p = command(bsub, "infer", cmd_bench, "single-image latency of a .tflite or .keras model")
    p.add_argument("model")
    p.add_argument("--threads", type=int)
    p.add_argument("--runs", type=int, default=200)

    p = command(sub, "export", cmd_export, "TFLite (LiteRT) files for phones, with parity")
    p.add_argument("model", help="a .keras model file")
    quantize = ("none", "float16", "dynamic", "int8", "all")
    p.add_argument("--quantize", choices=quantize, default="none")
    data_help = "calibration and parity data (default: the one it was trained on)"
    p.add_argument("--dataset", metavar="SPEC", help=data_help)
    p.add_argument("--samples", type=int, default=200, help="int8 calibration images")
    io_help = "integer type of the int8 file's input and output"
    p.add_argument("--int-io", choices=("uint8", "int8"), default="uint8", help=io_help)
    from cnnkeras.export._export import DEFAULT_AUTHOR, DEFAULT_LICENSE, INPUTS

    input_help = "rgb: a grey model converts RGB camera frames itself (phone runtimes need RGB)"
    p.add_argument("--input", choices=INPUTS, default="rgb", help=input_help)
    p.add_argument("--author", default=DEFAULT_AUTHOR, help="written into the file's metadata")
    p.add_argument("--license", default=DEFAULT_LICENSE, help="written into the file's metadata")
    repair_help = "when int8 misses its bar, also write model_int8_mixed.tflite"
    p.add_argument("--int8-repair", choices=("on", "off"), default="on", help=repair_help)
    p.add_argument("--out", metavar="DIR", help="default: tflite/<model-name>/")

    p = command(sub, "predict", cmd_predict, "classify image files with a .keras or .tflite")
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--tta", action="store_true", help=TTA_HELP)
    threshold_help = (
        "answer unknown below this top score; auto: the one train --target-accuracy found"
    )
    p.add_argument("--threshold", type=_threshold, metavar="auto|SCORE", help=threshold_help)

    explain = sub.add_parser("explain", help="the lecture's calculators")
    esub = explain.add_subparsers(dest="topic", required=True, parser_class=_Parser)
    p = command(esub, "conv", cmd_explain, "convolution output size, or a feature map")
    p.add_argument("--input", type=int, metavar="W")
    p.add_argument("--kernel", type=int, metavar="F")
    p.add_argument("--padding", default="0", metavar="P|same|valid")
    p.add_argument("--stride", type=int, default=1, metavar="S")
    p.add_argument("--image", metavar='"1 2 3; 4 5 6; ..."')
    p.add_argument("--filter", metavar='"1 0; 0 1"')
    p = command(esub, "separable", cmd_explain, "standard vs depthwise-separable conv cost")
    for flag, metavar in (("--input", "W"), ("--kernel", "F"), ("--in-channels", "M")):
        p.add_argument(flag, type=int, required=True, metavar=metavar)
    p.add_argument("--out-channels", type=int, required=True, metavar="N")
    p = command(esub, "receptive-field", cmd_explain, "stacked 3x3 convs against one large")
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--channels", type=int, default=64)
    p = command(esub, "scaling", cmd_explain, "EfficientNet compound scaling")
    p.add_argument("--phi", type=float)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cnnkeras`` and ``python -m cnnkeras``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # names of any bytes (a file or class folder named in Latin-1) print as the bytes they are
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    if argv[:1] == ["launch"]:  # the launcher only starts processes: no Keras, no TensorFlow
        parser, argv = (
            _launch_options(_Parser(prog="cnnkeras launch", description=LAUNCH_HELP)),
            argv[1:],
        )
    else:
        import_tensorflow_quietly()
        parser = build_parser()
    try:
        args = parser.parse_args(argv)
        result, text, *status = args.func(args)
        if args.json and result is not None:
            print(json.dumps(result, default=float))
        elif text:
            print(text)
        return int(status[0]) if status else 0
    except UserError as err:
        print(f"cnnkeras: error: {as_flags(' '.join(str(err).split()), parser)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnkeras: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
