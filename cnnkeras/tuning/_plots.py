"""Search plots: the objective per trial, and against each hyperparameter."""

from __future__ import annotations

import numpy as np

from cnnkeras._figures import plt, png_bytes


def objective_plots(
    rows: list[dict], hp_names: list[str], objective: str, maximize: bool
) -> dict[str, bytes]:
    done = [r for r in rows if r.get(objective) is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    ids = [int(r["trial_id"]) for r in done]
    values = [r[objective] for r in done]
    ax.plot(ids, values, "o", label=objective)
    if values:
        best = (np.maximum if maximize else np.minimum).accumulate(values)
        ax.step(ids, best, where="post", label="best so far")
    ax.set(xlabel="trial", ylabel=objective, title="objective per trial")
    ax.legend()
    plots = {"objective_per_trial.png": png_bytes(fig)}
    n = max(1, len(hp_names))
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
    for ax, name in zip(axes[0], hp_names or [""], strict=False):
        xs = [r.get(name) for r in done]
        if any(isinstance(x, str) for x in xs):
            labels = sorted({str(x) for x in xs})
            xs = [labels.index(str(x)) for x in xs]
            ax.set_xticks(range(len(labels)), labels)
        ax.plot(xs, values, "o")
        ax.set(xlabel=name, ylabel=objective)
        if name == "lr":
            ax.set_xscale("log")
    plots["objective_vs_hyperparameters.png"] = png_bytes(fig)
    return plots
