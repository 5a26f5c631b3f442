"""An offline, measured case for transfer learning (``cnnkeras demo transfer``).

LeNet-5 is pre-trained on mnist5k digits 0-4; digits 5-9 are then learned from only K labelled
images per class three ways: (a) the frozen pre-trained base with a new head, (b) (a) followed
by fine-tuning the whole network at a lower learning rate, (c) the same network from scratch
with as many epochs as (b). Test accuracy is measured on the held-out 5-9 test images, which
no method sees for training or model selection (epochs are fixed, not early-stopped).
"""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np

from cnnkeras.data import DEFAULT_SEED, Preprocessing, Split, load_dataset, make_pipeline
from cnnkeras.data._pipeline import DEFAULT_AUGMENT
from cnnkeras.errors import UserError
from cnnkeras.models import create_model
from cnnkeras.saved import predict_split
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._finetune import build_transfer_model, feature_extractor, set_trainable
from cnnkeras.train._run import compile_for_training, seed_everything

METHODS = ("frozen_base_new_head", "frozen_then_finetuned", "from_scratch")


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


def transfer_demo(
    k: int = 10,
    seeds: tuple[int, ...] = (0, 1, 2),
    *,
    pretrain_epochs: int = 15,
    head_epochs: int = 40,
    finetune_epochs: int = 20,
    head_lr: float = 3e-3,
    finetune_lr: float = 3e-4,
    model_options: dict | None = None,
    verbose: int = 0,
) -> dict:
    if k < 1 or not seeds:
        raise UserError("`k` must be >= 1 and `seeds` must hold at least one seed")
    data = load_dataset("mnist5k", seed=DEFAULT_SEED)
    prep = Preprocessing(32, 32, 1)
    old, new = range(0, 5), range(5, 10)
    pre_train, pre_val = _classes(data.splits["train"], old), _classes(data.splits["val"], old)
    new_train, new_test = _classes(data.splits["train"], new), _classes(data.splits["test"], new)
    config = TrainConfig(batch_size=16, augment=DEFAULT_AUGMENT)

    def fit(model, split, epochs, lr, seed):
        compile_for_training(model, dataclasses.replace(config, lr=lr))
        ds = make_pipeline(
            split,
            prep,
            5,
            batch_size=config.batch_size,
            training=True,
            augment=config.augment,
            seed=seed,
        )
        model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)

    def accuracy(model) -> float:
        scores, kept = predict_split(model, new_test, prep)
        return float((scores.argmax(axis=1) == new_test.labels[kept]).mean())

    runs = []
    for seed in seeds:
        seed_everything(seed)
        base = create_model("lenet5", num_classes=5, **(model_options or {}))
        compile_for_training(base, TrainConfig())
        base.fit(
            make_pipeline(pre_train, prep, 5, training=True, augment=config.augment, seed=seed),
            validation_data=make_pipeline(pre_val, prep, 5),
            epochs=pretrain_epochs,
            verbose=verbose,
            shuffle=False,
        )
        shots = _k_shot(new_train, k, seed)
        features, pool = feature_extractor(base)
        model = build_transfer_model(features, pool, [], prep, 5, head_dropout=0.2)
        set_trainable(features, None)
        fit(model, shots, head_epochs, head_lr, seed)
        frozen = accuracy(model)
        set_trainable(features, "all")
        fit(model, shots, finetune_epochs, finetune_lr, seed)
        tuned = accuracy(model)
        seed_everything(seed)
        scratch = create_model("lenet5", num_classes=5, **(model_options or {}))
        fit(scratch, shots, head_epochs + finetune_epochs, 1e-3, seed)
        runs.append(
            {"seed": seed, METHODS[0]: frozen, METHODS[1]: tuned, METHODS[2]: accuracy(scratch)}
        )
    summary = {
        m: {
            "mean": statistics.mean(r[m] for r in runs),
            "std": statistics.pstdev(r[m] for r in runs),
        }
        for m in METHODS
    }
    return {
        "k": k,
        "test_images": len(new_test),
        "pretrain": "lenet5 on mnist5k digits 0-4",
        "runs": runs,
        "summary": summary,
    }


def demo_table(result: dict) -> str:
    seeds = [r["seed"] for r in result["runs"]]
    lines = [
        f"Digits 5-9 from {result['k']} labelled images per class; test accuracy on "
        f"{result['test_images']} held-out images, seeds {', '.join(map(str, seeds))}.",
        "",
        "| method | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for m in METHODS:
        cells = " | ".join(f"{r[m]:.3f}" for r in result["runs"])
        s = result["summary"][m]
        lines.append(f"| {m.replace('_', ' ')} | {cells} | {s['mean']:.3f} ± {s['std']:.3f} |")
    return "\n".join(lines)
