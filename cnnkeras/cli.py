"""The ``cnnkeras`` command line: parse arguments, call the library, print.

Every subcommand is a thin shell over a public function; user mistakes become one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence

from cnnkeras._spawn import import_tensorflow_quietly
from cnnkeras.errors import UserError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line that says where to look for help."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


# Library errors name parameters in backticks (`image_size`); the command line says the flag.
# Most flags are their parameter with dashes; these are not:
PARAM_FLAGS = {
    "cache_budget_mb": "--cache-budget",
    "max_memory_growth_mb": "--max-memory-growth",
    "unfreeze": "--unfreeze-top",
}
_PARAM = re.compile(r"`([a-z][a-z0-9_]*)`")


def _option_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Parameter (argparse dest) -> long flag, over every subcommand."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public listing of its options
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags.update(_option_flags(sub))
        elif action.option_strings and action.dest not in flags:
            flags[action.dest] = max(action.option_strings, key=len)
    return flags


def as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """A library message with its `parameters` named as the command line's flags."""
    flags = {**_option_flags(parser), **PARAM_FLAGS}
    return _PARAM.sub(lambda m: flags.get(m[1], m[1]), message)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=None, default=float))


def _shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W,C like 224,224,3, got {text!r}") from None
    if len(shape) == 2:
        shape = (*shape, 3)
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W,C like 224,224,3, got {text!r}")
    return shape


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, {"none": None, "true": True, "false": False}.get(value.lower(), value)


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


# ---------------------------------------------------------------- models / summary


def cmd_models(args) -> None:
    from cnnkeras.models import zoo_table

    rows = zoo_table(args.pattern, measure=args.measure)
    if args.json:
        _print_json({"models": rows})
        return
    print(f"{'name':<17}{'family':<14}{'input':<13}{'params':>10}{'MACs':>10}  paper")
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        print(
            f"{r['name']:<17}{r['family']:<14}{shape:<13}{_human(r['params']):>10}"
            f"{_human(r['macs']):>10}  {r['paper']}"
        )


def cmd_summary(args) -> None:
    from cnnkeras.models import create_model, layer_table, model_totals

    options = dict(args.set or [])
    if args.input_shape:
        options["input_shape"] = args.input_shape
    if args.classes:
        options["num_classes"] = args.classes
    model = create_model(args.name, **options)
    rows, total = layer_table(model), model_totals(model)
    if args.json:
        _print_json(
            {
                "model": args.name,
                "input_shape": list(model.input_shape[1:]),
                "layers": rows,
                "total": total,
            }
        )
        return
    print(f"{'layer':<32}{'type':<24}{'output':<20}{'params':>12}{'MACs':>14}")
    for r in rows:
        shape = "x".join(str(d) for d in r["output_shape"]) if r["output_shape"] else "-"
        print(f"{r['name']:<32}{r['type']:<24}{shape:<20}{r['params']:>12,}{r['macs']:>14,}")
    print(
        f"total: {total['params']:,} parameters ({total['trainable_params']:,} trainable), "
        f"{total['macs']:,} MACs ({_human(total['macs'])}) for one image"
    )


# ---------------------------------------------------------------- explain


def cmd_explain_conv(args) -> None:
    from cnnkeras import explain

    if args.image is not None or args.filter is not None:
        if args.image is None or args.filter is None:
            raise UserError("give both --image and --filter, or --input and --kernel")
        result = explain.conv_feature_map(
            explain.parse_matrix(args.image, "image"),
            explain.parse_matrix(args.filter, "filter"),
            stride=args.stride,
            padding=args.padding,
        )
        if args.json:
            _print_json(result)
            return
        for step in result["steps"]:
            print(f"out[{step['row']}][{step['col']}] = {step['sum']} = {step['value']:g}")
        print("feature map:")
        for row in result["feature_map"]:
            print("  " + " ".join(f"{v:8g}" for v in row))
        print(f"Keras Conv2D gives the same map: {result['agrees_with_keras']}")
        return
    if args.input is None or args.kernel is None:
        raise UserError("give --input W and --kernel F (or --image and --filter)")
    r = explain.conv_output(args.input, args.kernel, args.stride, args.padding)
    if args.json:
        _print_json(r)
        return
    print(f"output size = (W - F + 2P) / S + 1 = {r['formula']}")
    if "note" in r:
        print(r["note"])
    print(f"output: {r['output']}x{r['output']} (Keras Conv2D: {r['keras_output']})")
    p = r["same_padding_stride1"]
    keep = f"P = (F - 1) / 2 = {p:g}" if p.is_integer() else f"{p:g} (an even kernel pads unevenly)"
    print(f"padding that keeps the size at stride 1: {keep}")


def cmd_explain_separable(args) -> None:
    from cnnkeras import explain

    r = explain.separable_cost(args.input, args.kernel, args.in_channels, args.out_channels)
    if args.json:
        _print_json(r)
        return
    w, f, m, n = args.input, args.kernel, args.in_channels, args.out_channels
    print(f"standard {f}x{f} conv, {m}->{n} channels on {w}x{w}:")
    print(f"  params {r['standard']['params']:,}, MACs {r['standard']['macs']:,}")
    print(f"depthwise {f}x{f} ({m} filters) + pointwise 1x1 ({m}->{n}):")
    print(f"  params {r['separable']['params']:,}, MACs {r['separable']['macs']:,}")
    print(f"ratio {r['ratio']:.4f} = {r['ratio_formula']}: {r['speedup']:.1f}x fewer MACs")


def cmd_explain_receptive(args) -> None:
    from cnnkeras import explain

    r = explain.receptive_field(args.kernel, args.layers, args.channels)
    if args.json:
        _print_json(r)
        return
    print(f"stacks of {args.kernel}x{args.kernel} convs, {args.channels} channels in and out:")
    print(
        f"{'layers':>6}  {'sees':>6}  {'stack params':>14}  {'one conv':>9}  {'params':>14}  saving"
    )
    for row in r["rows"]:
        print(
            f"{row['layers']:>6}  {row['receptive_field']:>4}px  {row['stack_params']:>14,}  "
            f"{row['single_conv']:>9}  {row['single_params']:>14,}  {row['saving']:.0%}"
        )
    print("and each extra layer adds a non-linearity (Simonyan & Zisserman 2015, Sec. 2.3)")


def cmd_explain_scaling(args) -> None:
    from cnnkeras import explain

    r = explain.compound_scaling(args.phi)
    if args.json:
        _print_json(r)
        return
    print(f"depth d = {r['alpha']}^phi, width w = {r['beta']}^phi, resolution r = {r['gamma']}^phi")
    print(
        f"alpha * beta^2 * gamma^2 = {r['alpha_beta2_gamma2']:.4f} ~ 2: "
        "each +1 of phi roughly doubles the FLOPs"
    )
    if "phi" in r:
        print(
            f"phi={r['phi']:g}: depth x{r['depth']:.3f}, width x{r['width']:.3f}, "
            f"resolution {r['resolution']}, FLOPs x{r['flops_factor']:.2f}"
        )
    print(f"{'model':<17}{'width':>6}{'depth':>6}{'res':>5}{'dropout':>8}   rule: w, d, r")
    for t in r["table"]:
        print(
            f"{t['model']:<17}{t['width']:>6}{t['depth']:>6}{t['resolution']:>5}{t['dropout']:>8}"
            f"   {t['rule_width']}, {t['rule_depth']}, {t['rule_resolution']}"
        )


# ---------------------------------------------------------------- train / evaluate


def cmd_train(args) -> None:
    from cnnkeras.train import TrainConfig, resume, train

    if args.resume:
        result = resume(args.resume, verbose=0 if args.quiet else 1)
    else:
        config = TrainConfig(
            arch=args.arch,
            dataset=args.dataset,
            epochs=args.epochs,
            image_size=args.image_size,
            loss=args.loss,
            dropout=args.dropout,
            model_options=dict(args.set or []),
            **_training_values(args),
        )
        result = train(config, verbose=0 if args.quiet else 1)
    if args.json:
        _print_json(result)


def cmd_evaluate(args) -> None:
    from cnnkeras.evaluate import evaluate_model

    m = evaluate_model(args.model, args.dataset, split=args.split, out=args.out)
    dataset = m["dataset"]
    if args.json:
        _print_json(m)
        return
    from cnnkeras.evaluate import summary_lines

    print("\n".join(summary_lines(m, f"{args.model} on {dataset} ({args.split})")[2:]))
    print(f"report: {m['report_dir']}/report.html")


def cmd_bench_train(args) -> None:
    from cnnkeras.bench import bench_train

    r = bench_train(
        args.arch,
        batch_size=args.batch_size,
        image_size=args.image_size,
        steps=args.steps,
        val_images=args.val_images,
        repeats=args.repeats,
        steps_per_execution=args.steps_per_execution,
    )
    if args.json:
        _print_json(r)
        return
    shape = "x".join(map(str, r["input_shape"]))
    val = f" + {r['val_images']} validation images" if r["val_images"] else ""
    print(
        f"{r['arch']} {shape}, batch {r['batch_size']}: {r['images_per_sec']:,.0f} images/s "
        f"({r['step_ms_median']:.2f} ms/step; median of {r['repeats']} epochs of {r['steps']} "
        f"steps{val}, {r['steps_per_execution']} steps per execution)"
    )


def cmd_export(args) -> None:
    from cnnkeras.export import export_model, parity_cells

    report = export_model(
        args.model,
        variants=args.quantize,
        dataset=args.dataset,
        samples=args.samples,
        out=args.out,
        int_io=args.int_io,
        verbose=0 if args.json else 1,
    )
    if args.json:
        _print_json(report)
        return
    if "keras_accuracy" in report:
        print(
            f"Keras model: accuracy {report['keras_accuracy']:.4f} on "
            f"{report['test_images']} test images"
        )
    print(f"{'variant':<9}{'KiB':>8}{'accuracy':>10}{'agreement':>11}{'max diff':>10}{'ms':>8}")
    for variant, r in report["variants"].items():
        acc, agree, diff = parity_cells(r)
        print(
            f"{variant:<9}{r['bytes'] / 1024:>8.0f}{acc:>10}{agree:>11}{diff:>10}"
            f"{r['median_ms']:>8.3f}"
        )
    print(f"files: {report['out']}")


def cmd_predict(args) -> int:
    from cnnkeras.predict import predict_files

    results = predict_files(args.model, args.images, top_k=args.top_k)
    if args.json:
        _print_json({"results": results})
    else:
        for r in results:
            if "error" in r:
                print(f"{r['image']}: error: {r['error']}", file=sys.stderr)
                continue
            best = ", ".join(f"{p['label']} {p['score']:.3f}" for p in r["top"])
            print(f"{r['image']}: {best}")
    return 1 if any("error" in r for r in results) else 0


def cmd_bench_infer(args) -> None:
    from cnnkeras.export import bench_infer

    r = bench_infer(args.model, threads=args.threads, runs=args.runs)
    if args.json:
        _print_json(r)
        return
    print(
        f"{r['model']} ({r['runtime']}, {r['file_bytes'] / 1024:.0f} KiB): median "
        f"{r['median_ms']:.3f} ms, p90 {r['p90_ms']:.3f} ms, "
        f"{r['images_per_sec']:,.0f} images/s"
    )


def cmd_tune(args) -> None:
    from cnnkeras.tuning import Experiment, load_experiment, retrain_best, run_search

    overrides = {
        "arch": args.arch,
        "dataset": args.dataset,
        "tuner": args.tuner,
        "max_trials": args.max_trials,
        "epochs": args.epochs,
        "objective": args.objective,
        "directory": args.dir,
        "seed": args.seed,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
    }
    if args.experiment:
        experiment = load_experiment(args.experiment, **overrides)
    else:
        experiment = Experiment(**{k: v for k, v in overrides.items() if v is not None})
    result = run_search(
        experiment,
        workers=args.workers,
        host=args.host,
        max_memory_growth_mb=args.max_memory_growth,
        verbose=0 if args.json else 1,
    )
    if args.retrain_best and result:
        result["retrained"] = retrain_best(experiment, verbose=0 if args.json else 1)
    if args.json and result:
        _print_json(result)


def _training_options(p: argparse.ArgumentParser, d) -> None:
    """The options that train and finetune share."""
    from cnnkeras.data import CACHES, DEFAULT_AUGMENT
    from cnnkeras.train import OPTIMIZERS, SCHEDULES

    p.add_argument(
        "--batch-size",
        type=_auto_int,
        default=d.batch_size,
        metavar="auto|N",
        help="auto (default): 64, 32 or 16, the largest that gives 50 steps an epoch",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr, help="the peak of the schedule")
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=d.schedule,
        help="learning rate: cosine decay after a linear warm-up (default), onecycle, "
        "plateau (halve when validation stalls) or constant",
    )
    p.add_argument("--warmup-epochs", type=int, metavar="N", help="default: min(3, epochs / 10)")
    p.add_argument(
        "--cache",
        choices=CACHES,
        default=d.cache,
        help="decoded images: in memory, in a disk file in the run folder, none, or auto "
        "(memory when they fit --cache-budget)",
    )
    p.add_argument("--cache-budget", type=float, default=d.cache_budget_mb, metavar="MIB")
    p.add_argument("--momentum", type=float, default=d.momentum, help="sgd and rmsprop")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument(
        "--augment",
        type=_augment,
        default="auto",
        metavar="LIST",
        help=f"comma list of flip,rotation,zoom,translation, or auto (default: "
        f"{','.join(DEFAULT_AUGMENT)}, and flip for colour images)",
    )
    p.add_argument("--no-augment", dest="augment", action="store_const", const=[])
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--patience", type=int, default=d.patience, help="early stopping")
    p.add_argument("--out", metavar="DIR", help="parent of the run folder (saved_models)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _training_values(args) -> dict:
    """The values of the options that _training_options adds, as config fields."""
    return {
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "schedule": args.schedule,
        "warmup_epochs": args.warmup_epochs,
        "cache": args.cache,
        "cache_budget_mb": args.cache_budget,
        "momentum": args.momentum,
        "label_smoothing": args.label_smoothing,
        "augment": args.augment if args.augment == "auto" else tuple(args.augment),
        "seed": args.seed,
        "patience": args.patience,
        "out": args.out,
    }


def cmd_finetune(args) -> None:
    from cnnkeras.train import FinetuneConfig, finetune

    unfreeze = args.unfreeze or (str(args.unfreeze_top) if args.unfreeze_top else None)
    config = FinetuneConfig(
        base=args.base,
        dataset=args.dataset,
        epochs_head=args.epochs_head,
        epochs_finetune=args.epochs_finetune,
        lr_finetune=args.lr_finetune,
        head_dropout=args.head_dropout,
        unfreeze=unfreeze,
        train_bn=args.train_bn,
        image_size=args.image_size,
        **_training_values(args),
    )
    result = finetune(config, verbose=0 if args.quiet else 1)
    if args.json:
        _print_json(result)


def cmd_demo_transfer(args) -> None:
    from cnnkeras.train import demo_table, transfer_demo

    result = transfer_demo(args.k, tuple(range(args.seeds)))
    print(json.dumps(result) if args.json else demo_table(result))


def _auto_int(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number, got {text!r}") from None


def _augment(text: str) -> list[str] | str:
    from cnnkeras.data import AUGMENTATIONS

    if text == "auto":
        return text
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = sorted(set(kinds) - set(AUGMENTATIONS))
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown augmentation {', '.join(bad)}; choose from {', '.join(AUGMENTATIONS)}"
        )
    return kinds


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnkeras", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. '*resnet*'")
    p.add_argument("--json", action="store_true")
    p.add_argument("--measure", action="store_true", help="build each model and count again")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="per-layer output shape, parameters and MACs")
    p.add_argument("name")
    p.add_argument("--input-shape", type=_shape, metavar="H,W,C")
    p.add_argument("--classes", type=int, metavar="N")
    p.add_argument(
        "--set",
        type=_option,
        action="append",
        metavar="KEY=VALUE",
        help="any builder option, e.g. --set alpha=0.5",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_summary)

    from cnnkeras.train import LOSSES, TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a model with model.fit into a run folder")
    p.add_argument("--arch", default=d.arch, help="a registered model name")
    p.add_argument(
        "--dataset",
        default=d.dataset,
        metavar="SPEC",
        help="digits, mnist5k, tfds:NAME or folder:PATH",
    )
    p.add_argument(
        "--epochs",
        type=_auto_int,
        default=d.epochs,
        metavar="auto|N",
        help="auto (default): 60, or enough for 1,500 steps when epochs are short",
    )
    p.add_argument("--image-size", type=int, help="default: the architecture's input size")
    p.add_argument("--loss", choices=LOSSES, default=d.loss)
    p.add_argument("--dropout", type=float, help="default: the architecture's")
    p.add_argument(
        "--set",
        type=_option,
        action="append",
        metavar="KEY=VALUE",
        help="a model builder option, e.g. --set activation=relu",
    )
    _training_options(p, d)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.set_defaults(func=cmd_train)

    from cnnkeras.train import FinetuneConfig

    f = FinetuneConfig()
    p = sub.add_parser("finetune", help="transfer learning: frozen base + new head, then tune")
    p.add_argument("--base", required=True, help="a .keras model file or imagenet:NAME")
    p.add_argument("--dataset", required=True, metavar="SPEC")
    p.add_argument("--epochs-head", type=int, default=f.epochs_head)
    p.add_argument("--epochs-finetune", type=int, default=f.epochs_finetune)
    p.add_argument("--lr-finetune", type=float, default=f.lr_finetune)
    p.add_argument("--head-dropout", type=float, default=f.head_dropout)
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--unfreeze-top",
        type=int,
        metavar="N",
        help="in phase 2, train the top N layers with weights of the base",
    )
    group.add_argument("--unfreeze", choices=("all",), help="in phase 2, train the whole base")
    p.add_argument("--train-bn", action="store_true", help="let batch-norm layers train too")
    p.add_argument("--image-size", type=int, help="imagenet bases: the size to build at")
    _training_options(p, f)
    p.set_defaults(func=cmd_finetune)

    demo = sub.add_parser("demo", help="measured demonstrations")
    dsub = demo.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = dsub.add_parser("transfer", help="pre-trained vs scratch on few labelled images")
    p.add_argument("--k", type=int, default=10, help="labelled images per new class")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo_transfer)

    p = sub.add_parser("evaluate", help="metrics, plots and a report for a saved model")
    p.add_argument("model", help="a .keras file (its config.json is read when present)")
    p.add_argument("--dataset", metavar="SPEC", help="default: the one it was trained on")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser("bench", help="measure speed")
    bsub = bench.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = bsub.add_parser("train", help="training throughput of the default path, synthetic data")
    p.add_argument("--arch", default="lenet5")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int)
    p.add_argument("--steps", type=int, default=64, help="steps of one timed epoch")
    p.add_argument(
        "--val-images", type=int, default=0, metavar="N", help="validate on N images each epoch"
    )
    p.add_argument(
        "--steps-per-execution",
        type=int,
        metavar="N",
        help="default: as train chooses it (a divisor of the epoch's steps)",
    )
    p.add_argument("--repeats", type=int, default=7, help="timed epochs; the median is kept")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_train)

    p = bsub.add_parser("infer", help="single-image latency of a .tflite or .keras model")
    p.add_argument("model")
    p.add_argument("--threads", type=int)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_infer)

    p = sub.add_parser("export", help="TFLite (LiteRT) files for phones, with a parity report")
    p.add_argument("model", help="a .keras model file")
    p.add_argument(
        "--quantize", choices=("none", "float16", "dynamic", "int8", "all"), default="none"
    )
    p.add_argument(
        "--dataset",
        metavar="SPEC",
        help="calibration and parity data (default: the one it was trained on)",
    )
    p.add_argument("--samples", type=int, default=200, help="int8 calibration images")
    p.add_argument(
        "--int-io",
        choices=("uint8", "int8"),
        default="uint8",
        help="integer type of the int8 file's input and output",
    )
    p.add_argument("--out", metavar="DIR", help="default: tflite/<model-name>/")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files with a .keras or .tflite model")
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    from cnnkeras.tuning import MEMORY_GROWTH_MB, TUNERS

    p = sub.add_parser("tune", help="Keras Tuner search of kernel size, filters, dropout, ...")
    p.add_argument("experiment", nargs="?", help="an experiment file (tuning/*.toml)")
    p.add_argument("--arch")
    p.add_argument("--dataset", metavar="SPEC")
    p.add_argument("--tuner", choices=TUNERS)
    p.add_argument("--max-trials", type=int)
    p.add_argument("--epochs", type=int, help="per trial (hyperband: the most per trial)")
    p.add_argument("--objective", help="default val_accuracy")
    p.add_argument("--dir", help="default tuning/runs/<experiment>/")
    p.add_argument("--seed", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run a chief oracle and N worker processes (Keras Tuner distributed)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the chief's address (loopback)")
    p.add_argument(
        "--max-memory-growth",
        type=float,
        default=MEMORY_GROWTH_MB,
        metavar="MIB",
        help="a search process that has grown this much since its first trial hands over to a "
        "fresh one (0: a fresh process for every trial; inf: one process)",
    )
    p.add_argument(
        "--retrain-best",
        action="store_true",
        help="retrain the best configuration into saved_models/ with its report",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tune)

    explain = sub.add_parser("explain", help="the lecture's calculators")
    esub = explain.add_subparsers(dest="topic", required=True, parser_class=_Parser)
    p = esub.add_parser("conv", help="convolution output size, or a feature map step by step")
    p.add_argument("--input", type=int, metavar="W")
    p.add_argument("--kernel", type=int, metavar="F")
    p.add_argument("--padding", default="0", metavar="P|same|valid")
    p.add_argument("--stride", type=int, default=1, metavar="S")
    p.add_argument("--image", metavar='"1 2 3; 4 5 6; ..."')
    p.add_argument("--filter", metavar='"1 0; 0 1"')
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain_conv)

    p = esub.add_parser("separable", help="standard vs depthwise-separable convolution cost")
    p.add_argument("--input", type=int, required=True, metavar="W")
    p.add_argument("--kernel", type=int, required=True, metavar="F")
    p.add_argument("--in-channels", type=int, required=True, metavar="M")
    p.add_argument("--out-channels", type=int, required=True, metavar="N")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain_separable)

    p = esub.add_parser("receptive-field", help="stacked 3x3 convs against one large conv")
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain_receptive)

    p = esub.add_parser("scaling", help="EfficientNet compound scaling")
    p.add_argument("--phi", type=float)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain_scaling)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cnnkeras`` and ``python -m cnnkeras``; returns the exit status."""
    import_tensorflow_quietly()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        func: Callable = args.func
        status = func(args)
        if status:
            return int(status)
    except UserError as err:
        print(f"cnnkeras: error: {as_flags(' '.join(str(err).split()), parser)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnkeras: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
