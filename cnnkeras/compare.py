"""``cnnkeras compare``: architectures trained the same way on the same data, then measured
as someone choosing a phone model needs: test accuracy and macro F1 over seeds, parameters,
MACs, training time, Keras and int8 LiteRT single-image latency, int8 size and accuracy.

Each (architecture, seed) is one ``cnnkeras train`` run with train's defaults (same split,
recipe and seed for every architecture) and one int8 export. Its row goes to comparison.csv
as soon as it is measured, so a killed comparison keeps what it finished and a rerun trains
only the rest (a run killed halfway resumes from its last epoch). A failure (input too
small, no epoch finished) is a row with its reason, and the others go on.

``budget_minutes`` gives every (architecture, seed) the same wall-clock training budget, the
fair comparison on a CPU: a short probe times the model's training steps at the run's batch
size, the run plans a little more than the epochs that fit, the clock stops it inside the
epoch where one more step and a validation would overrun, and its learning-rate schedule
follows the clock (it ends where the clock stops the run, however far the probe was off).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from cnnkeras import _doc, _io
from cnnkeras._files import CONFIG_FILE, MODEL_FILE
from cnnkeras.errors import UserError

CSV_FILE = "comparison.csv"
SETTINGS_FILE = "comparison.json"
COLUMNS = (
    "arch",
    "seed",
    "status",  # ok, failed or skipped; every row is final (delete it to run it again)
    "reason",
    "params",
    "macs",
    "image_size",
    "epochs",
    "train_status",  # train's: done, early_stopped or nan
    "train_seconds",
    "test_accuracy",
    "test_macro_f1",
    "keras_ms",
    "int8_ms",
    "int8_kib",
    "int8_accuracy",
    "int8_agreement",
    "run_dir",
)
_INTS = ("seed", "params", "macs", "image_size", "epochs")
_TEXT = ("arch", "status", "reason", "train_status", "run_dir")
# per architecture: mean and spread over seeds
_MEASURES = ("test_accuracy", "test_macro_f1", "train_seconds", "keras_ms", "int8_ms")
_MEASURES += ("int8_accuracy",)
PROBE_STEPS = 16
# a budget run plans this many times the epochs its probe says fit (its calls per epoch are
# set from them; its schedule follows the clock), and the clock stops it inside an epoch
# (train._callbacks.TimeBudget): the probe misses the input pipeline, so planning only what
# fits left runs up to 15% under (BENCHMARKS.md)
BUDGET_PLAN = 1.2
MEMORY_SHARE = 0.5  # of the machine's memory that weights, gradients and Adam's moments may use


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for raw in csv.DictReader(io.StringIO(path.read_text())):
        row: dict = {}
        for key in COLUMNS:
            value = raw.get(key, "")
            if key in _TEXT:
                row[key] = value
            elif value == "":
                row[key] = None
            else:
                row[key] = int(float(value)) if key in _INTS else float(value)
        rows.append(row)
    return rows


def _write_rows(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    _io.write_text(path, buf.getvalue())


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[bool]:
    """Which points no other point beats: none has at most the cost and at least the score
    with one of the two strictly better."""
    points = list(zip(costs, scores, strict=True))
    return [
        not any(c2 <= c and s2 >= s and (c2 < c or s2 > s) for c2, s2 in points) for c, s in points
    ]


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class Budget(NamedTuple):
    """What a probe says of a run given a training budget (seconds)."""

    epochs: int  # to plan: BUDGET_PLAN times what fits; the clock stops the run
    epoch_s: float  # an epoch, its validation included
    reserve_s: float  # the first validation, its tracing included (TimeBudget's first_tail)
    least_s: float  # tracing, one step and one validation: less than this cannot train


def budget_epochs(config, seconds: float) -> Budget:
    """What fits ``seconds`` of ``config``'s training, from a probe of its training and
    validation steps (``bench_train``: a traced epoch, then timed ones) scaled to the run's
    epoch."""
    from cnnkeras.bench import bench_train
    from cnnkeras.train import PRECISE_BN_BATCHES, prepare

    size, data, _, _, plan = prepare(config, verbose=0)
    steps = min(plan.steps_per_epoch, PROBE_STEPS)
    share = steps / plan.steps_per_epoch  # the probe's epoch is this share of the run's
    precise_bn = min(PRECISE_BN_BATCHES, plan.steps_per_epoch)  # the run's, whatever the epoch
    options = config.builder_options()
    probe = bench_train(
        config.arch,
        batch_size=plan.batch_size,
        image_size=size,
        channels=data.channels,
        num_classes=data.num_classes,
        steps=steps,
        val_images=round(len(data.splits["val"]) * share),
        repeats=2,
        model_options=options,
        precision=plan.precision,
        precise_bn_batches=max(1, round(precise_bn * share)),
    )
    epoch_s = probe["epoch_s_median"] / share
    tail_s = probe["tail_s_median"] / share
    tracing_s = probe["first_epoch_s"] - probe["epoch_s_median"]
    return Budget(
        epochs=max(1, int(BUDGET_PLAN * seconds // epoch_s)),
        epoch_s=epoch_s,
        reserve_s=probe["first_tail_s"] - probe["tail_s_median"] + tail_s,
        least_s=tracing_s + tail_s + probe["step_ms_median"] / 1000,
    )


def _measure_model(config) -> tuple[int, int, int]:
    """(parameters, MACs per image, image size) of the model ``config`` trains."""
    from cnnkeras.data import load_dataset
    from cnnkeras.models import count_macs, create_model, model_info

    size = model_info(config.arch).image_size(config.image_size)
    data = load_dataset(config.dataset, seed=config.seed, verbose=0)
    options = config.builder_options()
    model = create_model(
        config.arch,
        input_shape=(size, size, data.channels),
        num_classes=data.num_classes,
        **options,
    )
    return int(model.count_params()), int(count_macs(model)), size


def _reason(err: Exception) -> str:
    """An exception in one line: a user error as it reads, anything else with its type."""
    text = " ".join(str(err).split())[:300]
    return text if isinstance(err, UserError) else f"{type(err).__name__}: {text}"


def _train(config, budget_s: float | None, run_dir: Path, verbose: int) -> dict:
    """Train's result for ``config`` in ``run_dir`` (resumed when a run is there), in the
    epochs that fit ``budget_s``; ``{"skipped": why}`` when one epoch does not fit."""
    from cnnkeras.train import resume, train

    if (run_dir / CONFIG_FILE).is_file():
        return resume(run_dir, verbose=verbose)
    if budget_s is not None:
        budget = budget_epochs(config, budget_s)
        if budget.least_s > budget_s:
            return {
                "skipped": f"tracing, one step and one validation take about "
                f"{budget.least_s:.0f} s, over the budget of {budget_s:.0f} s"
            }
        _io.log(
            verbose,
            f"  budget {budget_s:.0f} s: {budget.epochs} epochs of ~{budget.epoch_s:.1f} s "
            "planned, stopped by the clock",
        )
        config = dataclasses.replace(
            config,
            epochs=budget.epochs,
            budget_seconds=budget_s,
            budget_reserve_seconds=budget.reserve_s,
        )
    return train(config, run_dir=run_dir, verbose=verbose)


def _one(config, budget_s: float | None, run_dir: Path, tflite_dir: Path, verbose: int) -> dict:
    """Train (or resume), evaluate and export one (architecture, seed); its CSV row."""
    from cnnkeras.export import export_model

    row: dict = {"arch": config.arch, "seed": config.seed, "status": "ok", "reason": ""}
    try:
        row["params"], row["macs"], row["image_size"] = _measure_model(config)
        need = 16 * row["params"]  # float32 weights, gradients and two Adam moments
        if need > MEMORY_SHARE * _memory_bytes():
            return {
                **row,
                "status": "skipped",
                "reason": f"too large for this machine: training needs about "
                f"{need / 2**30:.1f} GiB for weights and optimizer state alone",
            }
        result = _train(config, budget_s, run_dir, verbose)
    except Exception as err:  # recorded with its reason; the other architectures go on
        return {**row, "status": "failed", "reason": _reason(err)}
    if "skipped" in result:
        return {**row, "status": "skipped", "reason": result["skipped"]}
    row.update(
        epochs=result["epochs_run"],
        train_status=result["status"],
        train_seconds=result["fit_seconds"],
        test_accuracy=result["test_accuracy"],
        test_macro_f1=result["test_macro_f1"],
        run_dir=str(run_dir),
    )
    if result["status"] == "nan":
        row["reason"] = "the loss became NaN; the best epoch before it is reported"
    try:
        report = export_model(  # plain int8 is what compare measures; apps are export's job
            run_dir / MODEL_FILE,
            variants=("int8",),
            out=tflite_dir,
            int8_repair=False,
            check_runtimes=False,
            verbose=0,
        )
    except Exception as err:
        row["reason"] = f"int8 export failed: {_reason(err)}"
        return row
    int8 = report["variants"]["int8"]
    row.update(
        keras_ms=report["keras_latency"]["median_ms"],
        int8_ms=int8["median_ms"],
        int8_kib=int8["bytes"] / 1024,
        int8_accuracy=int8["accuracy"],
        int8_agreement=int8["agreement"],
    )
    return row


def summarise(rows: list[dict]) -> list[dict]:
    """One line per architecture: the mean and spread of each measure over its seeds, and
    whether it is on the Pareto front of accuracy against MACs and against int8 latency."""
    table = []
    for arch in dict.fromkeys(r["arch"] for r in rows):
        mine = [r for r in rows if r["arch"] == arch]
        ok = [r for r in mine if r["status"] == "ok"]
        line = {"arch": arch, "seeds": len(ok), "params": mine[0]["params"]}
        line["macs"], line["image_size"] = mine[0]["macs"], mine[0]["image_size"]
        if not ok:
            line.update(status=mine[0]["status"], reason=mine[0]["reason"])
            table.append(line)
            continue
        line.update(
            status="ok", reason="; ".join(dict.fromkeys(r["reason"] for r in ok if r["reason"]))
        )
        line["epochs"] = statistics.mean(r["epochs"] for r in ok)
        line["int8_kib"] = ok[0]["int8_kib"]
        for key in _MEASURES:
            values = [r[key] for r in ok if r[key] is not None]
            line[key], line[key + "_std"] = _doc.spread(values) if values else (None, 0.0)
        table.append(line)
    measured = [t for t in table if t["status"] == "ok"]
    for cost, flag in (("macs", "front_macs"), ("int8_ms", "front_int8")):
        points = [t for t in measured if t.get(cost) is not None]
        front = pareto_front([t[cost] for t in points], [t["test_accuracy"] for t in points])
        for t, on in zip(points, front, strict=True):
            t[flag] = on
    return table


def _pm(line: dict, key: str, fmt: str) -> str:
    if line.get(key) is None:
        return ""
    return _doc.spread_cell(line[key], line.get(key + "_std") or 0.0, line["seeds"], fmt)


HEADER = (
    "architecture",
    "params",
    "MACs",
    "epochs",
    "train s",
    "test accuracy",
    "macro F1",
    "Keras ms",
    "int8 ms",
    "int8 KiB",
    "int8 accuracy",
    "Pareto (MACs / int8 ms)",
)


def table_rows(table: list[dict]) -> list[tuple[str, ...]]:
    """The summary as text cells, in HEADER's order."""
    out = []
    for t in table:
        if t["status"] != "ok":
            cells = [t["arch"], f"{t['params']:,}" if t["params"] else "", ""]
            out.append((*cells, *[""] * 8, f"{t['status']}: {t['reason']}"))
            continue
        front = "/".join("yes" if t.get(k) else "no" for k in ("front_macs", "front_int8"))
        out.append(
            (
                f"**{t['arch']}**" if t.get("front_macs") or t.get("front_int8") else t["arch"],
                f"{t['params']:,}",
                f"{t['macs'] / 1e6:,.1f}M",
                f"{t['epochs']:g}",
                _pm(t, "train_seconds", ".0f"),
                _pm(t, "test_accuracy", ".4f"),
                _pm(t, "test_macro_f1", ".4f"),
                _pm(t, "keras_ms", ".2f"),
                _pm(t, "int8_ms", ".3f"),
                f"{t['int8_kib']:,.0f}" if t.get("int8_kib") is not None else "",
                _pm(t, "int8_accuracy", ".4f"),
                front,
            )
        )
    return out


def _plot(table: list[dict], cost: str, label: str, title: str) -> bytes:
    from cnnkeras._figures import plt, png_bytes

    points = [t for t in table if t["status"] == "ok" and t.get(cost) is not None]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    flag = "front_macs" if cost == "macs" else "front_int8"
    for t in points:
        on = t.get(flag)
        ax.errorbar(
            t[cost],
            t["test_accuracy"],
            yerr=t.get("test_accuracy_std") or 0.0,
            fmt="o",
            color="C3" if on else "C0",
            capsize=3,
        )
        ax.annotate(
            t["arch"],
            (t[cost], t["test_accuracy"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    front = sorted((t[cost], t["test_accuracy"]) for t in points if t.get(flag))
    if front:
        ax.step(*zip(*front, strict=True), where="post", color="C3", lw=1, label="Pareto front")
        ax.legend(loc="best", fontsize=8)
    costs = [t[cost] for t in points]
    if costs and min(costs) > 0 and max(costs) / min(costs) > 10:
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return png_bytes(fig)


PLOTS = {
    "accuracy_vs_macs.png": ("macs", "MACs per image"),
    "accuracy_vs_int8_latency.png": ("int8_ms", "int8 LiteRT latency per image (ms)"),
}


def _lecture_notes(archs: set[str]) -> list[str]:
    """What the lecture's figures say about the compared models, against the zoo's."""
    notes = []
    if {"alexnet", "googlenet"} <= archs:
        from cnnkeras.models import zoo_table

        params = {row["name"]: row["params"] for row in zoo_table() if row["name"] in archs}
        alexnet, googlenet = params["alexnet"], params["googlenet"]
        notes.append(
            f"AlexNet / GoogLeNet parameters at 224x224 with 1000 classes: {alexnet / 1e6:.1f}M "
            f"/ {googlenet / 1e6:.1f}M = {alexnet / googlenet:.1f}x (the lecture says about "
            "12x, from the papers' rounded 60M and 5M)"
        )
    return notes


def _write_reports(out: Path, settings: dict, rows: list[dict]) -> list[dict]:
    table = summarise(rows)
    about = [
        f"dataset {settings['dataset']}, seeds {', '.join(map(str, settings['seeds']))}, "
        + (
            f"a training budget of {settings['budget_minutes']:g} minutes each"
            if settings["budget_minutes"]
            else f"epochs {settings['epochs'] or 'auto'} (train's defaults otherwise)"
        ),
        "image size: " + (f"{settings['image_size']}" if settings["image_size"] else "each's own"),
        "latency: one image, median of 50 runs on this machine's CPU (Keras in a tf.function; "
        "int8 with the LiteRT interpreter and XNNPACK)",
        "bold: on the Pareto front of test accuracy against MACs or against int8 latency",
        *_lecture_notes({row["arch"] for row in rows}),
    ]
    pngs = {
        name: _plot(table, cost, label, f"{settings['dataset']}: accuracy against {label}")
        for name, (cost, label) in PLOTS.items()
    }
    title = f"Architectures compared on {settings['dataset']}"
    blocks = [
        _doc.Heading(title, 1),
        _doc.Bullets(tuple(about)),
        _doc.table(HEADER, table_rows(table)),
        *(_doc.Image(name, data) for name, data in pngs.items()),
    ]
    for name, data in pngs.items():
        _io.write_bytes(out / name, data)
    _io.write_text(out / "comparison.md", _doc.markdown(blocks))
    _io.write_text(out / "comparison.html", _doc.html_page(title, blocks))
    return table


def compare(
    dataset: str,
    archs: Sequence[str] | None = None,
    *,
    image_size: int | None = None,
    epochs: int | None = None,
    budget_minutes: float | None = None,
    seeds: int = 1,
    model_options: dict[str, dict] | None = None,
    precision: str = "float32",
    out: str | Path | None = None,
    verbose: int = 1,
) -> dict:
    """Train, evaluate and export each of ``archs`` (default: every registered model) on
    ``dataset`` with the same split, recipe and seeds; return the per-architecture table
    (``summary``), the per-run ``rows`` and the folder they were written to.

    ``model_options`` maps an architecture to builder options (``{"mobilenet_v2": {"alpha":
    0.35}}``). Without ``epochs`` or ``budget_minutes``, train's epochs apply; ``precision``
    is train's (``auto``: each architecture's own choice)."""
    from cnnkeras.data import DEFAULT_SEED
    from cnnkeras.models import list_models
    from cnnkeras.train import TrainConfig

    archs = list(archs) if archs is not None else list_models()
    model_options = {k: dict(v) for k, v in (model_options or {}).items()}
    _check_arguments(archs, model_options, epochs, budget_minutes, seeds)
    out = Path(out) if out else Path("saved_models") / f"comparison-{_io.safe_name(dataset)}"
    _io.check_writable(out)
    settings = {
        "dataset": dataset,
        "image_size": image_size,
        "epochs": epochs,
        "budget_minutes": budget_minutes,
        "seeds": [DEFAULT_SEED + i for i in range(seeds)],
        "model_options": model_options,
        "precision": precision,
    }
    settings = _continued(out, settings, archs)
    out.mkdir(parents=True, exist_ok=True)
    _io.write_json(out / SETTINGS_FILE, settings)
    rows = _read_rows(out / CSV_FILE)
    done = {(r["arch"], r["seed"]) for r in rows}
    todo = [(a, DEFAULT_SEED + i) for a in archs for i in range(seeds)]
    budget_s = 60 * budget_minutes if budget_minutes is not None else None
    for n, (arch, seed) in enumerate(todo, 1):
        if (arch, seed) in done:
            continue
        _io.log(verbose, f"[{n}/{len(todo)}] {arch}, seed {seed}")
        config = TrainConfig(
            arch=arch,
            dataset=dataset,
            image_size=image_size,
            epochs=epochs or "auto",
            seed=seed,
            model_options=model_options.get(arch, {}),
            precision=precision,
        )
        name = f"{arch}-seed{seed}"
        row = _one(config, budget_s, out / "runs" / name, out / "tflite" / name, verbose)
        if row["status"] != "ok" or row["reason"]:
            _io.log(verbose, f"  {arch}: {row['status']}: {row['reason']}")
        rows.append({**dict.fromkeys(COLUMNS), **dict.fromkeys(_TEXT, ""), **row})
        _write_rows(out / CSV_FILE, rows)
    wanted = {(a, s) for a, s in todo}
    chosen = [r for r in rows if (r["arch"], r["seed"]) in wanted]
    table = _write_reports(out, settings, chosen)
    return {"out": str(out), "summary": table, "rows": chosen}


def _check_arguments(
    archs: list[str],
    model_options: dict[str, dict],
    epochs: int | None,
    budget_minutes: float | None,
    seeds: int,
) -> None:
    """Refuse a comparison that could not run, before any training."""
    from cnnkeras.models import check_option_names, model_info

    if not archs:
        raise UserError("`archs` is empty; name architectures or compare all of them")
    for arch in archs:
        model_info(arch)  # an unknown name fails here, before any training
    unknown = sorted(set(model_options) - set(archs))
    if unknown:
        raise UserError(
            f"`model_options` for {', '.join(unknown)}: not among the compared architectures"
        )
    for arch, options in model_options.items():
        check_option_names(arch, options)
    if epochs is not None and budget_minutes is not None:
        raise UserError("give `epochs` or `budget_minutes`, not both")
    if epochs is not None and epochs < 1:
        raise UserError("`epochs` must be >= 1")
    if budget_minutes is not None and not budget_minutes > 0:
        raise UserError("`budget_minutes` must be > 0")
    if seeds < 1:
        raise UserError("`seeds` must be >= 1")


def _continued(out: Path, settings: dict, archs: list[str]) -> dict:
    """``settings`` joined with those of the comparison already in ``out`` (its seeds and
    other architectures' options); refused if they measure another thing."""
    previous = _io.read_json(out / SETTINGS_FILE) if (out / SETTINGS_FILE).is_file() else None
    if not previous:
        return settings
    fixed = {"dataset": None, "image_size": None, "epochs": None, "budget_minutes": None}
    fixed["precision"] = "float32"  # comparisons from before it was an option
    differ = [k for k, was in fixed.items() if previous.get(k, was) != settings[k]]
    options = settings["model_options"]
    differ += [
        f"{a}'s options"
        for a in archs
        if previous.get("model_options", {}).get(a, {}) != options.get(a, {})
    ]
    if differ:
        raise UserError(
            f"{out} holds a comparison with another {', '.join(differ)}; pass another `out`"
        )
    return {
        **settings,
        "model_options": {**previous.get("model_options", {}), **options},
        "seeds": sorted({*previous["seeds"], *settings["seeds"]}),
    }


def compare_text(result: dict) -> str:
    """The summary table as markdown, and where the files are."""
    lines = _doc.markdown_table(HEADER, table_rows(result["summary"]))
    out = Path(result["out"])
    files = [CSV_FILE, "comparison.md", "comparison.html", *PLOTS]
    return "\n".join([*lines, "", "files: " + ", ".join(str(out / f) for f in files)])


__all__ = [
    "COLUMNS",
    "HEADER",
    "Budget",
    "budget_epochs",
    "compare",
    "compare_text",
    "pareto_front",
]
