"""A search's results: the trials table (CSV and Markdown), plots, the best trial, and
training the best configuration into a run folder."""

from __future__ import annotations

import io
import json
import statistics

from cnnkeras import _doc, _io
from cnnkeras._files import CONFIG_FILE
from cnnkeras.errors import UserError
from cnnkeras.models import model_info
from cnnkeras.train import TrainConfig
from cnnkeras.tuning._experiment import TRAINING_HPS, Experiment
from cnnkeras.tuning._tuner import EXTRA, PROJECT

RETRAINED = "retrained.json"  # the retrained best configuration and train's defaults


def _load_trials(experiment: Experiment) -> tuple[list[dict], list[str]]:
    """Every trial as Keras Tuner saved it, in trial order, and the hyperparameters' names."""
    root = experiment.out / PROJECT
    order = list(experiment.space(model_info(experiment.arch).family))
    rows, hp_names = [], {}
    for path in sorted(root.glob("trial_*/trial.json")):
        t = json.loads(path.read_text())
        found = t["hyperparameters"]["values"]
        names = [k for k in order if k in found] + sorted(
            k for k in found if k not in order and not k.startswith("tuner/")
        )
        hp_names.update(dict.fromkeys(names))
        more = _io.read_json(path.parent / EXTRA)
        message = (t.get("message") or "").strip().splitlines()
        rows.append(
            {
                "trial_id": t["trial_id"],
                "status": t["status"],
                **{k: found[k] for k in names},
                experiment.objective: t.get("score"),
                "epochs": more.get("epochs"),
                "seconds": round(more["seconds"], 2) if "seconds" in more else None,
                "params": more.get("params"),
                "rss_mb": more.get("rss_mb"),
                "message": message[-1] if message else "",
            }
        )
    return rows, list(hp_names)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_results(experiment: Experiment, verbose: int = 1) -> dict:
    """trials.csv, best_hyperparameters.json, plots and summary.md from the search folder."""
    import csv

    from cnnkeras.tuning._plots import objective_plots

    rows, hp_names = _load_trials(experiment)
    if not rows:
        raise UserError(f"no trials found in {experiment.out}")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _io.write_text(experiment.out / "trials.csv", buf.getvalue())
    done = [r for r in rows if r["status"] == "COMPLETED" and r[experiment.objective] is not None]
    sign = 1 if experiment.maximize else -1
    best = max(done, key=lambda r: sign * r[experiment.objective]) if done else None
    result = {
        "experiment": experiment.name,
        "trials": len(rows),
        "completed": len(done),
        "failed": sum(r["status"] == "FAILED" for r in rows),
        "best": best,
        "out": str(experiment.out),
    }
    if best:
        _io.write_json(
            experiment.out / "best_hyperparameters.json",
            {k: best[k] for k in hp_names if best.get(k) is not None}
            | {experiment.objective: best[experiment.objective], "trial_id": best["trial_id"]},
        )
    plots = objective_plots(rows, hp_names, experiment.objective, experiment.maximize)
    for name, png in plots.items():
        _io.write_bytes(experiment.out / name, png)
    blocks = _summary(experiment, rows, columns[:-1], result, hp_names, plots)
    _io.write_text(experiment.out / "summary.md", _doc.markdown(blocks))
    if verbose and best:
        print(
            f"best {experiment.objective} {best[experiment.objective]:.4f} "
            f"(trial {best['trial_id']}); results in {experiment.out}"
        )
    return result


def _summary(
    experiment: Experiment, rows, columns, result: dict, hp_names, plots: dict
) -> list[_doc.Block]:
    """summary.md: the search, its best trial, every trial, the plots, any retraining."""
    best = result["best"]
    facts = [f"trials: {len(rows)} ({result['completed']} completed, {result['failed']} failed)"]
    if best:
        facts.append(
            f"best {experiment.objective}: {best[experiment.objective]:.4f} "
            f"(trial {best['trial_id']}: " + ", ".join(f"{k}={best[k]}" for k in hp_names) + ")"
        )
    alt = {
        "objective_per_trial.png": "objective per trial",
        "objective_vs_hyperparameters.png": "objective against each hyperparameter",
    }
    blocks = [
        _doc.Heading(
            f"{experiment.name}: {experiment.tuner} search of {experiment.arch} on "
            f"{experiment.dataset}",
            1,
        ),
        _doc.Bullets(tuple(facts)),
        _doc.table(columns, ([_cell(r[c]) for c in columns] for r in rows)),
        *(_doc.Image(name, png, alt.get(name, "")) for name, png in plots.items()),
    ]
    retrained = _io.read_json(experiment.out / RETRAINED)
    if retrained:
        blocks.append(_doc.Text("\n".join(retrained_lines(retrained))))
    return blocks


def retrain_best(
    experiment: Experiment,
    epochs: int | str | None = None,
    seeds: int = 1,
    baseline: bool = True,
    verbose: int = 1,
) -> dict:
    """Train the best configuration with ``cnnkeras train`` for ``seeds`` seeds (the
    experiment's and the next ones), and with ``baseline`` the same architecture, data and
    fixed builder options at ``train``'s defaults with the same seeds; runs go to
    ``<search folder>/retrained/``, the test accuracies and the gain to ``retrained.json``
    and ``summary.md``. ``epochs`` default: ``train``'s ('auto'), the same for both. A
    finished run is not trained again (a killed retrain picks up where it stopped)."""
    from cnnkeras.train import resume, train

    if seeds < 1:
        raise UserError("`seeds` must be >= 1")
    best_path = experiment.out / "best_hyperparameters.json"
    if not best_path.is_file():
        raise UserError(f"no best_hyperparameters.json in {experiment.out}; run the search first")
    best = json.loads(best_path.read_text())
    space = experiment.space(model_info(experiment.arch).family)
    options = {k: best[k] for k in space if k in best and k not in TRAINING_HPS}
    dropout = options.pop("dropout", None)
    epochs = epochs or "auto"
    configs = {
        "best": lambda seed: experiment.train_config(
            best,
            epochs=epochs,
            seed=seed,
            dropout=dropout,
            model_options={**experiment.model_options, **options},
        ),
    }
    if baseline:
        configs["defaults"] = lambda seed: TrainConfig(
            arch=experiment.arch,
            dataset=experiment.dataset,
            image_size=experiment.image_size,
            epochs=epochs,
            seed=seed,
            model_options=dict(experiment.model_options),
        )
    runs = {name: [] for name in configs}
    for seed in range(experiment.seed, experiment.seed + seeds):
        for name, make in configs.items():
            folder = experiment.out / "retrained" / f"{name}-seed{seed}"
            record = _io.read_json(folder / CONFIG_FILE)
            if "result" in record:
                result = record["result"]
            elif record:
                result = resume(folder, verbose=verbose)
            else:
                result = train(make(seed), run_dir=folder, verbose=verbose)
            runs[name].append({"seed": seed, **result})
    summary = {"best_hyperparameters": best, "epochs": epochs, "runs": runs}
    for name, rows in runs.items():
        accuracies = [r["test_accuracy"] for r in rows]
        summary[name] = {"mean": statistics.fmean(accuracies), "values": accuracies}
        if len(accuracies) > 1:
            summary[name]["stdev"] = statistics.stdev(accuracies)
    if baseline:
        summary["gain"] = summary["best"]["mean"] - summary["defaults"]["mean"]
    _io.write_json(experiment.out / RETRAINED, summary)
    write_results(experiment, verbose=0)
    if verbose:
        print("\n".join(retrained_lines(summary)[2:]))
    return summary


def retrained_lines(summary: dict) -> list[str]:
    """summary.md's section on the retrained best configuration (and the defaults)."""
    lines = ["## Retrained on the test split", ""]
    for name, title in (("best", "best configuration"), ("defaults", "`cnnkeras train` defaults")):
        if name in summary:
            s = summary[name]
            spread = f" +- {s['stdev']:.4f}" if "stdev" in s else ""
            values = ", ".join(f"{v:.4f}" for v in s["values"])
            lines.append(
                f"- {title}: mean test accuracy **{s['mean']:.4f}**{spread} over "
                f"{len(s['values'])} seed(s) ({values}), epochs {summary['epochs']}"
            )
    if "gain" in summary:
        lines.append(f"- gain of the search: {summary['gain']:+.4f}")
    return lines
