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
from functools import partial

from cnnkeras._files import BATCH_FILE
from cnnkeras._help import HELP, TOP, Formatter, demo_help
from cnnkeras._options import add_options, as_flags, flag_group, given, key_value, with_default
from cnnkeras._spawn import import_tensorflow_quietly
from cnnkeras.demos import DEMOS  # their declarations: no TensorFlow
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

    if args.what == "conv" and (args.image is not None or args.filter is not None):
        if args.image is None or args.filter is None:
            raise UserError("give both --image and --filter, or --input and --kernel")
        image = explain.parse_matrix(args.image, "image")
        kernel = explain.parse_matrix(args.filter, "filter")
        r = explain.conv_feature_map(image, kernel, stride=args.stride, padding=args.padding)
        return r, explain.conv_feature_map_text(r)
    if args.what == "conv":
        if args.input is None or args.kernel is None:
            raise UserError("give --input W and --kernel F (or --image and --filter)")
        r = explain.conv_output(args.input, args.kernel, args.stride, args.padding)
        return r, explain.conv_output_text(r)
    if args.what == "separable":
        r = explain.separable_cost(args.input, args.kernel, args.in_channels, args.out_channels)
        return r, explain.separable_cost_text(r)
    if args.what == "receptive-field":
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


def cmd_data_preview(args):
    from cnnkeras.train import TrainConfig, preview

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
    from cnnkeras.demos import demo_text, run_demo

    names = DEMOS[args.what].options
    options = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    plot = args.plot or f"saved_models/demo-{args.what}.png"
    result = run_demo(args.what, tuple(range(args.seeds)), plot=plot, **options)
    return result, demo_text(result)


def cmd_compare(args):
    from cnnkeras.compare import compare, compare_text

    options: dict[str, dict] = {}
    for arch, key, value in args.model_options or []:
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
        precision=args.precision,
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
    options["web"] = args.web
    report = export_model(args.model, variants=args.quantize, verbose=_verbose(args), **options)
    return report, export_text(report)


def cmd_serve(args):
    from cnnkeras.web import serve

    result = serve(args.export_dir, port=args.port, bind=args.bind, verbose=_verbose(args))
    return result, ""


def cmd_predict(args):
    from cnnkeras.predict import predict_files, predict_text

    options = {"top_k": args.top_k, "tta": args.tta, "threshold": args.threshold}
    results = predict_files(args.model, args.images, **options)
    failed = [r for r in results if "error" in r]
    for r in failed if not args.json else []:
        print(f"{r['image']}: error: {r['error']}", file=sys.stderr)
    return {"results": results}, predict_text(results), 1 if failed else 0


def cmd_docs(args):
    from cnnkeras.docs import guide, guides, guides_text

    if args.topic is None:
        found = guides()
        return {"guides": found}, guides_text(found)
    text = guide(args.topic)
    return {"topic": args.topic, "text": text}, text


def cmd_bench(args):
    if args.what == "infer":
        from cnnkeras.export import bench_infer, bench_infer_text

        r = bench_infer(args.model, threads=args.threads, runs=args.runs)
        return r, bench_infer_text(r)
    from cnnkeras.bench import bench_train, bench_train_text

    names = ("batch_size", "image_size", "steps", "val_images", "repeats", "steps_per_execution")
    options = {k: getattr(args, k) for k in names}
    r = bench_train(
        args.arch, precision=args.precision, model_options=dict(args.set or []), **options
    )
    return r, bench_train_text(r)


# ---------------------------------------------------------------- parser
# One function per command adds its arguments; COMMANDS lists them in the order of
# `cnnkeras --help`, and _help.HELP says what each does. A command's arguments are built only
# when it is the one run (or all, for the tests), so `cnnkeras --help` imports no TensorFlow.

TTA_HELP = (
    "also average the scores over test-time augmented copies that follow the run's "
    "augmentation, reported beside the plain result"
)


def _models_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter of the names")
    p.add_argument("--measure", action="store_true", help="build each model and count again")


def _builder_option(p) -> None:
    """``--set KEY=VALUE``: a builder option of the one architecture a command builds."""
    set_help = "a builder option, e.g. --set alpha=0.35 (repeatable)"
    p.add_argument("--set", type=key_value, action="append", metavar="KEY=VALUE", help=set_help)


def _summary_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a registered model name (`cnnkeras models` lists them)")
    shape_help = "the input shape (default: the architecture's)"
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C", help=shape_help)
    p.add_argument("--classes", type=int, metavar="N", help="outputs of the classifier")
    _builder_option(p)


def _train_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras.train import TrainConfig

    add_options(p, TrainConfig)
    resume_help = "continue an interrupted run from its last finished epoch"
    flag_group(p, "output").add_argument("--resume", metavar="RUN_DIR", help=resume_help)


def _launch_args(p: argparse.ArgumentParser) -> None:
    group = flag_group(p, "scale-out")
    group.add_argument("--processes", type=int, required=True, metavar="N", help="how many")
    port_help = "the coordinator's port (default: a free one)"
    group.add_argument("--port", type=int, help=port_help)
    bind_help = "the coordinator listens here: 0.0.0.0 for other machines (default: 127.0.0.1)"
    group.add_argument("--bind", metavar="ADDRESS", help=bind_help)
    force_help = "start more processes than this machine has CPU cores"
    group.add_argument("--force", action="store_true", help=force_help)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="-- train OPTIONS")


def _lr_find_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras._files import LR_FIND_FILE
    from cnnkeras.train import LR_FIND_STEPS, TrainConfig

    add_options(p, TrainConfig)
    group = flag_group(p, "training")
    steps_help = "steps of the test, as `train --lr auto` takes"
    group.add_argument("--steps", type=int, default=LR_FIND_STEPS, help=steps_help)
    plot_help = "the loss against the rate"
    flag_group(p, "output").add_argument(
        "--plot", default=LR_FIND_FILE, metavar="PNG", help=plot_help
    )


def _finetune_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras.train import FinetuneConfig

    add_options(p, FinetuneConfig)


def _tune_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras.tuning import MEMORY_GROWTH_MB, Experiment

    p.add_argument("experiment", nargs="?", help="an experiment file (tuning/*.toml)")
    add_options(p, Experiment)
    group = flag_group(p, "scale-out")
    workers_help = "run a chief oracle and N worker processes (Keras Tuner distributed)"
    group.add_argument("--workers", type=int, default=0, metavar="N", help=workers_help)
    host_help = "the chief's address"
    group.add_argument("--host", default="127.0.0.1", help=host_help)
    growth_help = (
        "a search process that has grown this much since its first trial hands over to a "
        "fresh one (0: a fresh process for every trial; inf: one process)"
    )
    group.add_argument(
        "--max-memory-growth",
        dest="max_memory_growth_mb",
        type=float,
        default=MEMORY_GROWTH_MB,
        metavar="MIB",
        help=growth_help,
    )
    group = flag_group(p, "search")
    retrain_help = (
        "then train the best configuration with train's epochs, and train's defaults beside "
        "it, into DIR/retrained/; the test accuracies and the gain go to summary.md"
    )
    group.add_argument("--retrain-best", action="store_true", help=retrain_help)
    seeds_help = "seeds of each retrain"
    group.add_argument("--seeds", type=int, default=1, help=seeds_help)
    no_baseline = "retrain the best configuration only, without train's defaults beside it"
    group.add_argument("--no-baseline", dest="baseline", action="store_false", help=no_baseline)


SPEC_HELP = "the dataset, as train's --dataset"

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


def _data_preview_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras.train import TrainConfig

    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    add_options(p, TrainConfig, only=PREVIEW_OPTIONS)
    out_help = "the grid of images"
    flag_group(p, "output").add_argument("--out", default=BATCH_FILE, metavar="PNG", help=out_help)


def _data_check_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras.train import TrainConfig

    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    add_options(p, TrainConfig, only=("seed",))
    group = flag_group(p, "output")
    out_help = "folder for data_check.html and data_check.json"
    group.add_argument("--out", default="data_check", metavar="DIR", help=out_help)
    fix_help = "write a label file without the validation/test images that repeat training ones"
    group.add_argument("--fix-leakage", action="store_true", help=fix_help)


def _demo_args(p: argparse.ArgumentParser, name: str) -> None:
    from cnnkeras.demos import demo_function

    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    defaults = inspect.signature(demo_function(name)).parameters
    for option, text in DEMOS[name].options.items():
        flag_help = with_default(text, defaults[option].default)
        p.add_argument(f"--{option}", type=int, metavar="N", help=flag_help)
    png_help = with_default("the figure", f"saved_models/demo-{name}.png")
    flag_group(p, "output").add_argument("--plot", metavar="PNG", help=png_help)


def _compare_args(p: argparse.ArgumentParser) -> None:
    data = flag_group(p, "data")
    data.add_argument("--dataset", required=True, metavar="SPEC", help=SPEC_HELP)
    size_help = "images are resized to N x N pixels (default: each architecture's input)"
    data.add_argument("--image-size", type=int, metavar="N", help=size_help)
    model = flag_group(p, "model")
    which = model.add_mutually_exclusive_group(required=True)
    which.add_argument("--archs", metavar="A,B,C", help="the architectures to compare")
    which.add_argument("--all", action="store_true", help="every registered architecture")
    set_help = "a builder option of one architecture, e.g. --set mobilenet_v2.alpha=0.35"
    model.add_argument(
        "--set",
        dest="model_options",
        type=_arch_option,
        action="append",
        metavar="ARCH.KEY=VALUE",
        help=set_help,
    )
    training = flag_group(p, "training")
    length = training.add_mutually_exclusive_group()
    epochs_help = "epochs of each run (default: train's, auto)"
    length.add_argument("--epochs", type=int, metavar="N", help=epochs_help)
    budget_help = "the same wall-clock training time for each architecture and seed"
    length.add_argument("--budget-minutes", type=float, metavar="M", help=budget_help)
    seeds_help = "runs of each architecture, seeds 42, 43, ..."
    training.add_argument("--seeds", type=int, default=1, help=seeds_help)
    from cnnkeras.train import PRECISIONS

    precision_help = "as train --precision, for every architecture"
    training.add_argument("--precision", choices=PRECISIONS, default="float32", help=precision_help)
    out_help = (
        "where the tables go; a rerun there continues (default: saved_models/comparison-DATASET/)"
    )
    flag_group(p, "output").add_argument("--out", metavar="DIR", help=out_help)


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .keras or .tflite file (its run's record is read)")
    data = flag_group(p, "data")
    dataset_help = "the images to score (default: the dataset it was trained on)"
    data.add_argument("--dataset", metavar="SPEC", help=dataset_help)
    split_help = "which split of it"
    data.add_argument("--split", choices=("train", "val", "test"), default="test", help=split_help)
    unknown_help = (
        "a dataset of none of the model's classes: how well the top score tells its images "
        "from the split's (AUROC), and how many a threshold lets through"
    )
    data.add_argument("--unknown", metavar="SPEC", help=unknown_help)
    flag_group(p, "recipe").add_argument("--tta", action="store_true", help=TTA_HELP)
    out = flag_group(p, "output")
    out.add_argument("--out", metavar="DIR", help="the report's folder (default: beside the model)")
    losses_help = "how many of the highest-loss images the report shows"
    out.add_argument("--top-losses", type=int, default=16, metavar="N", help=losses_help)


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .keras file of a run (its preprocessing and labels are used)")
    p.add_argument("images", nargs="+", help="image files, any size and colour mode")
    cam = flag_group(p, "model")
    cam.add_argument("--class", dest="class_name", metavar="NAME", help="Grad-CAM of this too")
    layer_help = "Grad-CAM's layer (default: the last whose map is at least 2x2)"
    cam.add_argument("--layer", metavar="NAME", help=layer_help)
    layers_help = "layers whose feature maps are drawn (default: the last of each stage)"
    cam.add_argument("--layers", metavar="A,B,C", help=layers_help)
    out = flag_group(p, "output")
    out.add_argument("--top-k", type=int, default=3, help="classes printed")
    out_help = "where the images go (default: inspect/ beside the model)"
    out.add_argument("--out", metavar="DIR", help=out_help)


def _bench_train_args(p: argparse.ArgumentParser) -> None:
    model = flag_group(p, "model")
    model.add_argument("--arch", default="lenet5", help="the architecture")
    _builder_option(model)
    precision_help = "what the model computes in, as train --precision"
    from cnnkeras.train import POLICIES

    model.add_argument(
        "--precision", choices=tuple(POLICIES), default="float32", help=precision_help
    )
    size_help = "images are N x N pixels (default: the architecture's input)"
    model.add_argument("--image-size", type=int, metavar="N", help=size_help)
    timing = flag_group(p, "training")
    timing.add_argument("--batch-size", type=int, default=64, help="images a step")
    steps_help = "steps of a timed epoch"
    timing.add_argument("--steps", type=int, default=64, help=steps_help)
    val_help = "validate on N images after each epoch, as train does"
    timing.add_argument("--val-images", type=int, default=0, metavar="N", help=val_help)
    spe_help = "steps per graph call (default: as train chooses, a divisor of the epoch's steps)"
    timing.add_argument("--steps-per-execution", type=int, metavar="N", help=spe_help)
    repeats_help = "timed epochs; the median is kept"
    timing.add_argument("--repeats", type=int, default=7, help=repeats_help)


def _bench_infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .tflite or .keras file")
    threads_help = "LiteRT's threads (default: LiteRT's choice)"
    p.add_argument("--threads", type=int, help=threads_help)
    p.add_argument("--runs", type=int, default=200, help="timed single images")


def _export_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras.export import DEFAULT_AUTHOR, DEFAULT_LICENSE, INPUTS

    p.add_argument("model", help="a .keras model file of a run")
    model = flag_group(p, "model")
    quantize_help = "the variants: all is float32, float16, dynamic and int8"
    quantize = ("none", "float16", "dynamic", "int8", "all")
    model.add_argument("--quantize", choices=quantize, default="none", help=quantize_help)
    io_help = "integer type of the int8 file's input and output"
    model.add_argument("--int-io", choices=("uint8", "int8"), default="uint8", help=io_help)
    input_help = "rgb: a grey model converts RGB camera frames itself, as phone runtimes need"
    model.add_argument("--input", choices=INPUTS, default="rgb", help=input_help)
    repair_help = "when int8 misses its bar, also write model_int8_mixed.tflite"
    model.add_argument("--int8-repair", choices=("on", "off"), default="on", help=repair_help)
    data = flag_group(p, "data")
    data_help = "calibration and parity images (default: the dataset it was trained on)"
    data.add_argument("--dataset", metavar="SPEC", help=data_help)
    samples_help = "int8 calibration images"
    data.add_argument("--samples", type=int, default=200, help=samples_help)
    out = flag_group(p, "output")
    author_help = "written into the file's metadata"
    out.add_argument("--author", default=DEFAULT_AUTHOR, help=author_help)
    license_help = "written into the file's metadata"
    out.add_argument("--license", default=DEFAULT_LICENSE, help=license_help)
    out.add_argument("--out", metavar="DIR", help="the export folder (default: tflite/MODEL/)")
    web_help = "also write the browser app (page and LiteRT.js) into it: a folder any host serves"
    out.add_argument("--web", action="store_true", help=web_help)


def _serve_args(p: argparse.ArgumentParser) -> None:
    from cnnkeras.web import DEFAULT_PORT, LOOPBACK

    p.add_argument("export_dir", metavar="EXPORT_DIR", help="a folder cnnkeras export wrote")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: any free port")
    bind_help = "the address to listen on: 0.0.0.0 for phones on the network"
    p.add_argument("--bind", default=LOOPBACK, metavar="ADDRESS", help=bind_help)


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .keras or .tflite file")
    p.add_argument("images", nargs="+", help="image files, any size and colour mode")
    p.add_argument("--top-k", type=int, default=3, help="classes printed")
    p.add_argument("--tta", action="store_true", help=TTA_HELP)
    threshold_help = (
        "answer unknown below this top score; auto: the one train --target-accuracy found"
    )
    p.add_argument("--threshold", type=_threshold, metavar="auto|SCORE", help=threshold_help)


def _explain_conv_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=int, metavar="W", help="the input's width")
    p.add_argument("--kernel", type=int, metavar="F", help="the kernel's width")
    padding_help = "pixels added on each side, or same or valid"
    p.add_argument("--padding", default="0", metavar="P|same|valid", help=padding_help)
    p.add_argument("--stride", type=int, default=1, metavar="S", help="the step")
    image_help = "a small image, rows separated by semicolons"
    p.add_argument("--image", metavar='"1 2 3; 4 5 6; ..."', help=image_help)
    p.add_argument("--filter", metavar='"1 0; 0 1"', help="a kernel, rows separated by semicolons")


def _explain_separable_args(p: argparse.ArgumentParser) -> None:
    for flag, metavar, help in (
        ("--input", "W", "the input's width"),
        ("--kernel", "F", "the kernel's width"),
        ("--in-channels", "M", "channels in"),
        ("--out-channels", "N", "channels out"),
    ):
        p.add_argument(flag, type=int, required=True, metavar=metavar, help=help)


def _explain_receptive_field_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", type=int, default=3, help="the stacked kernel")
    p.add_argument("--layers", type=int, default=3, help="stacks of 1..N")
    channels_help = "channels in and out of each layer"
    p.add_argument("--channels", type=int, default=64, help=channels_help)


def _explain_scaling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--phi", type=float, help="a compound coefficient to scale B0 by")


def _docs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("topic", nargs="?", help="a guide's name (default: list them)")


# what `--help` says of each command: _help's, and each demo's from its declaration
COMMAND_HELP = {
    **HELP,
    **{
        ("demo", d.name): demo_help(d.name, d.summary, d.description, d.quick)
        for d in DEMOS.values()
    },
}
# path -> (what runs it, what adds its arguments); a path with neither groups subcommands
COMMANDS: dict[tuple[str, ...], tuple] = {
    ("train",): (cmd_train, _train_args),
    ("finetune",): (cmd_finetune, _finetune_args),
    ("evaluate",): (cmd_evaluate, _evaluate_args),
    ("predict",): (cmd_predict, _predict_args),
    ("export",): (cmd_export, _export_args),
    ("serve",): (cmd_serve, _serve_args),
    ("inspect",): (cmd_inspect, _inspect_args),
    ("data",): (None, None),
    ("data", "check"): (cmd_data_check, _data_check_args),
    ("data", "preview"): (cmd_data_preview, _data_preview_args),
    ("lr-find",): (cmd_lr_find, _lr_find_args),
    ("tune",): (cmd_tune, _tune_args),
    ("compare",): (cmd_compare, _compare_args),
    ("demo",): (None, None),
    **{("demo", name): (cmd_demo, partial(_demo_args, name=name)) for name in DEMOS},
    ("explain",): (None, None),
    ("explain", "conv"): (cmd_explain, _explain_conv_args),
    ("explain", "separable"): (cmd_explain, _explain_separable_args),
    ("explain", "receptive-field"): (cmd_explain, _explain_receptive_field_args),
    ("explain", "scaling"): (cmd_explain, _explain_scaling_args),
    ("models",): (cmd_models, _models_args),
    ("summary",): (cmd_summary, _summary_args),
    ("bench",): (None, None),
    ("bench", "train"): (cmd_bench, _bench_train_args),
    ("bench", "infer"): (cmd_bench, _bench_infer_args),
    ("launch",): (cmd_launch, _launch_args),
    ("docs",): (cmd_docs, _docs_args),
}


def build_parser(path: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    """The command line; with ``path`` (``("data", "check")``), only that command's options
    are built, so that a command, and ``--help``, import only what they need."""
    top = _Parser(
        prog="cnnkeras",
        description=TOP.description,
        epilog=TOP.epilog(),
        formatter_class=Formatter,
    )
    top._positionals.title = "commands"  # argparse: no public way to name this group
    children = {
        (): top.add_subparsers(
            dest="command", required=True, metavar="COMMAND", parser_class=_Parser
        )
    }
    for key, (func, arguments) in COMMANDS.items():
        help = COMMAND_HELP[key]
        p = children[key[:-1]].add_parser(
            key[-1],
            help=help.summary,
            description=help.description,
            epilog=help.epilog(),
            formatter_class=Formatter,
        )
        if func is None:
            p._positionals.title = "commands"  # argparse: no public way to name this group
            children[key] = p.add_subparsers(
                dest="what", required=True, metavar="COMMAND", parser_class=_Parser
            )
            continue
        p.set_defaults(func=func)
        if path is None or key == path:
            arguments(p)
            if key in PLAIN_OUTPUT:
                p.set_defaults(json=False, quiet=False)
            else:
                output = flag_group(p, "output")
                output.add_argument("--json", action="store_true", help=JSON_HELP)
                output.add_argument("--quiet", action="store_true", help="no progress lines")
    return top


JSON_HELP = "print the result as one JSON line, and no progress"
PLAIN_OUTPUT = {("launch",)}  # prints its processes' output as it comes: no --json, --quiet


def command_path(argv: Sequence[str]) -> tuple[str, ...]:
    """The command that ``argv`` names (``("data", "check")``), as far as it names one."""
    path: tuple[str, ...] = ()
    for token in argv:
        if (*path, token) not in COMMANDS:
            break
        path = (*path, token)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cnnkeras`` and ``python -m cnnkeras``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # names of any bytes (a file or class folder named in Latin-1) print as the bytes they are
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    path = command_path(argv)
    # help, the launcher (it only starts processes), the guides and the server need no
    # TensorFlow
    if COMMANDS.get(path, (None,))[0] not in (None, cmd_launch, cmd_docs, cmd_serve):
        import_tensorflow_quietly()
    parser = build_parser(path)
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
