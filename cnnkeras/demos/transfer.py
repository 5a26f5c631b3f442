"""An offline, measured case for transfer learning (``cnnkeras demo transfer``).

LeNet-5 is pre-trained on mnist5k digits 0-4; digits 5-9 are then learned from only K labelled
images per class three ways: (a) the frozen pre-trained base with a new head, (b) (a) followed
by fine-tuning the whole network at a lower learning rate, (c) the same network from scratch
with as many epochs as (b). Test accuracy is measured on the held-out 5-9 test images, which
no method sees for training or model selection (epochs are fixed, not early-stopped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from cnnkeras import _doc
from cnnkeras.data import (
    DEFAULT_AUGMENT,
    DEFAULT_SEED,
    Preprocessing,
    Split,
    load_dataset,
    make_pipeline,
)
from cnnkeras.demos._harness import pm, result
from cnnkeras.demos._registry import SEEDS, register_demo
from cnnkeras.errors import UserError
from cnnkeras.models import create_model
from cnnkeras.saved import predict_split
from cnnkeras.train import (
    TrainConfig,
    build_transfer_model,
    compile_for_training,
    feature_extractor,
    seed_everything,
    set_trainable,
)

METHODS = ("frozen_base_new_head", "frozen_then_finetuned", "from_scratch")
PREP = Preprocessing(32, 32, 1)
RECIPE = TrainConfig(batch_size=16, augment=DEFAULT_AUGMENT)


def _classes(split: Split, keep: range) -> Split:
    """The images of ``keep`` with labels renumbered from 0."""
    sub = split.subset(np.flatnonzero(np.isin(split.labels, list(keep))))
    sub.labels = sub.labels - keep.start
    return sub


def _k_shot(split: Split, k: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(split.labels == c), k, replace=False)
        for c in np.unique(split.labels)
    ]
    return split.subset(np.sort(np.concatenate(picks)))


def _fit(model, split: Split, epochs: int, lr: float, seed: int, verbose: int) -> None:
    """Train on ``split`` with the demo's recipe at ``lr`` (no validation: epochs are fixed)."""
    compile_for_training(model, dataclasses.replace(RECIPE, lr=lr))
    ds = make_pipeline(
        split,
        PREP,
        5,
        batch_size=RECIPE.batch_size,
        training=True,
        augment=RECIPE.augment,
        seed=seed,
    )
    model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)


@register_demo("transfer")
def transfer_demo(
    seeds: Sequence[int] = SEEDS,
    *,
    k: int = 10,
    pretrain_epochs: int = 15,
    head_epochs: int = 40,
    finetune_epochs: int = 20,
    head_lr: float = 3e-3,
    finetune_lr: float = 3e-4,
    model_options: dict | None = None,
    verbose: int = 0,
) -> dict:
    """Each method's test accuracy on digits 5-9 from ``k`` labelled images a class, for each
    seed (a pre-training, a draw of the images, and the weights of each method)."""
    if k < 1 or not seeds:
        raise UserError("`k` must be >= 1 and `seeds` must hold at least one seed")
    data = load_dataset("mnist5k", seed=DEFAULT_SEED)
    old, new = range(0, 5), range(5, 10)
    pre_train, pre_val = _classes(data.splits["train"], old), _classes(data.splits["val"], old)
    new_train, new_test = _classes(data.splits["train"], new), _classes(data.splits["test"], new)

    def accuracy(model) -> float:
        scores, kept = predict_split(model, new_test, PREP)
        return float((scores.argmax(axis=1) == new_test.labels[kept]).mean())

    runs = []
    for seed in seeds:
        seed_everything(seed)
        base = create_model("lenet5", num_classes=5, **(model_options or {}))
        compile_for_training(base, TrainConfig())
        base.fit(
            make_pipeline(pre_train, PREP, 5, training=True, augment=RECIPE.augment, seed=seed),
            validation_data=make_pipeline(pre_val, PREP, 5),
            epochs=pretrain_epochs,
            verbose=verbose,
            shuffle=False,
        )
        shots = _k_shot(new_train, k, seed)
        features, pool = feature_extractor(base)
        model = build_transfer_model(features, pool, [], PREP, 5, head_dropout=0.2)
        set_trainable(features, None)
        _fit(model, shots, head_epochs, head_lr, seed, verbose)
        frozen = accuracy(model)
        set_trainable(features, "all")
        _fit(model, shots, finetune_epochs, finetune_lr, seed, verbose)
        tuned = accuracy(model)
        seed_everything(seed)
        scratch = create_model("lenet5", num_classes=5, **(model_options or {}))
        _fit(scratch, shots, head_epochs + finetune_epochs, 1e-3, seed, verbose)
        runs.append(
            {"seed": seed, METHODS[0]: frozen, METHODS[1]: tuned, METHODS[2]: accuracy(scratch)}
        )
    return _result(runs, k, len(new_test))


def _result(runs: list[dict], k: int, test_images: int) -> dict:
    seeds = [r["seed"] for r in runs]
    summary = {}
    for m in METHODS:
        mean, std = _doc.spread([r[m] for r in runs])
        summary[m] = {"mean": mean, "std": std}
    rows = [
        {
            "method": m.replace("_", " "),
            **{f"seed {r['seed']}": f"{r[m]:.3f}" for r in runs},
            "mean": pm([r[m] for r in runs]),
        }
        for m in METHODS
    ]
    means = {m: summary[m]["mean"] for m in METHODS}
    verdict = (
        f"digits 5-9 from {k} labelled images a class, test accuracy on {test_images} "
        f"held-out images: the frozen pre-trained base with a new head reached "
        f"{means[METHODS[0]]:.3f}, fine-tuned {means[METHODS[1]]:.3f}, from scratch "
        f"{means[METHODS[2]]:.3f}"
    )
    return result(
        "transfer",
        ["method", *(f"seed {s}" for s in seeds), "mean"],
        rows,
        means[METHODS[1]] > means[METHODS[2]],
        verdict,
        _bars_png(runs, k),
        k=k,
        test_images=test_images,
        pretrain="lenet5 on mnist5k digits 0-4",
        runs=runs,
        summary=summary,
    )


def _bars_png(runs: list[dict], k: int) -> bytes:
    """Each method's mean test accuracy, with the seeds as dots."""
    from cnnkeras._figures import plt, png_bytes

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, m in enumerate(METHODS):
        values = [r[m] for r in runs]
        ax.bar(i, float(np.mean(values)), color=f"C{i}", alpha=0.7)
        ax.plot([i] * len(values), values, "o", color="black", ms=4)
    ax.set_xticks(range(len(METHODS)), [m.replace("_", " ") for m in METHODS], fontsize=8)
    ax.set_ylabel("test accuracy, digits 5-9")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"{k} labelled images a class", fontsize=10)
    return png_bytes(fig)
