"""What a run resolves before it starts: the batch size ('auto'), steps per execution, the
validation batch, the cache and the learning-rate schedule, each with the reason, so that
the run says what it chose and ``--resume`` continues with exactly the same."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from cnnkeras.data import DEFAULT_AUGMENT, MIX_STRENGTHS, MIXING, Preprocessing, resolve_cache
from cnnkeras.errors import UserError
from cnnkeras.train._class_weights import class_weights, imbalance_note

AUTO_BATCH_SIZES = (64, 32, 16)  # largest first
MIN_STEPS_PER_EPOCH = 50  # 'auto' picks the largest batch that still gives this many steps
MAX_STEPS_PER_EXECUTION = 32  # BENCHMARKS.md: no gain above it for the zoo on a CPU
# a run with a time budget makes at least this many graph calls in its planned epochs, so
# that the clock can stop it within a small share of the budget (TimeBudget acts between calls)
BUDGET_CALLS = 50
MAX_VAL_BATCH = 64  # validation activations, like prediction's, stay those of a training batch
AUTO_EPOCHS = 60
MIN_TOTAL_STEPS = 1500  # 'auto' epochs: at least this many optimizer steps in a run
DECAYING = ("cosine", "onecycle")  # a rate for every step; the others keep one (plateau halves it)
SCHEDULES = (*DECAYING, "plateau", "constant")


@dataclass(frozen=True)
class TrainingPlan:
    batch_size: int
    steps_per_epoch: int
    steps_per_execution: int
    val_batch_size: int
    val_steps: int
    cache: str
    schedule: str
    warmup_epochs: int
    epochs: int
    augment: tuple[str, ...] = DEFAULT_AUGMENT
    early_stop_from: int = 0  # early stopping counts epochs from this one on
    reasons: tuple[str, ...] = ()
    class_weights: tuple[float, ...] | None = None  # loss weight of each class, label order
    mix: tuple[tuple[str, float], ...] = ()  # (mixup or cutmix, its alpha) in the augment list
    drop_last: bool = False  # the epoch's last, partial training batch is left out
    val_padded: bool = False  # validation is padded to whole batches with images of weight 0
    precision: str = "float32"  # what the model computes in (train._precision)
    float32_layers: tuple[str, ...] = ()  # layer types kept float32 in a mixed model

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict:
        d = {**asdict(self), "augment": list(self.augment), "reasons": list(self.reasons)}
        d["float32_layers"] = list(self.float32_layers)
        d["class_weights"] = list(self.class_weights) if self.class_weights else None
        d["mix"] = dict(self.mix)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainingPlan:
        weights = d.get("class_weights")
        return cls(
            **{
                **d,
                "augment": tuple(d["augment"]),
                "reasons": tuple(d["reasons"]),
                "class_weights": tuple(weights) if weights else None,
                "mix": tuple(d.get("mix", {}).items()),
                "float32_layers": tuple(d.get("float32_layers", ())),
            }
        )


def auto_batch_size(n_train: int) -> tuple[int, str]:
    """The largest of 64, 32, 16 that gives at least 50 steps an epoch (16 below that):
    few steps an epoch starve the optimizer and the batch-norm statistics of updates."""
    for batch in AUTO_BATCH_SIZES:
        if math.ceil(n_train / batch) >= MIN_STEPS_PER_EPOCH:
            break
    steps = math.ceil(n_train / batch)
    return batch, f"batch size {batch}: {n_train:,} training images, {steps} steps an epoch"


def execution_plan(
    train_steps: int, n_val: int, most: int = MAX_STEPS_PER_EXECUTION
) -> tuple[int, int, int]:
    """(steps per execution, validation batch size, validation steps) such that the steps per
    execution divide both the training and the validation steps of an epoch.

    Keras runs steps in chunks of ``steps_per_execution`` inside one graph call; a chunk cut
    short by the end of the data takes a slow path (BENCHMARKS.md), so no epoch may end in one.
    The validation batch is free to choose: it has no effect on the result. Without
    validation (``n_val`` 0) the validation batch and steps are 0. ``most``: the largest
    steps per execution to consider."""
    divisors = [d for d in range(min(train_steps, most), 0, -1) if train_steps % d == 0]
    if n_val == 0:
        return divisors[0], 0, 0
    for spe in divisors:
        for val_steps in range(spe, n_val + 1, spe):
            batch = math.ceil(n_val / val_steps)
            if batch <= MAX_VAL_BATCH and math.ceil(n_val / batch) == val_steps:
                return spe, batch, val_steps
    batch = min(n_val, MAX_VAL_BATCH)
    return 1, batch, math.ceil(n_val / batch)


def _check_shares(batch: int, n_train: int, count: int, what: str) -> None:
    """A distributed batch: a multiple of the devices sharing it, and no larger than the
    training split (whose first batch would otherwise be partial)."""
    if batch % count or batch > n_train:
        whole = min(batch, n_train) // count * count
        raise UserError(
            f"`batch_size` {batch} must be a multiple of the {count} {what} and at most "
            f"the {n_train} training images; pass {max(whole, count)}"
        )


def replica_batches(n_train: int, batch: int, n_val: int, replicas: int) -> tuple[bool, int]:
    """(leave out the last training batch, validation batch) for ``replicas`` devices.

    Each global batch is split across the replicas. Two splits fail in Keras 3.15 with
    TensorFlow 2.21: a first batch that does not split evenly (``fit`` and ``evaluate``
    average the first batch across replicas to build the model: "Inputs to operation AddN
    must have the same size and shape"), and a batch of fewer images than replicas, whose
    empty share batch norm rejects ("Incompatible shapes ... [0,H,W,C]"). So batches are
    multiples of the replica count; the epoch's last, partial training batch is left out when
    it is shorter than that (a few different images each shuffled epoch); the validation
    batch (at most 64 images a replica) is chosen so that its last batch is full or has an
    image for every replica, and every validation image counts; that fails only for
    validation splits of fewer than three images a replica."""
    _check_shares(batch, n_train, replicas, "replicas")
    if n_val == 0:
        return 0 < n_train % batch < replicas, 0
    for val_batch in range(
        min(n_val, MAX_VAL_BATCH * replicas) // replicas * replicas, 0, -replicas
    ):
        if n_val % val_batch == 0 or n_val % val_batch >= replicas:
            return 0 < n_train % batch < replicas, val_batch
    raise UserError(
        f"the validation split's {n_val} image(s) cannot be batched so that each of the "
        f"{replicas} replicas gets an image; use fewer `devices` or more images"
    )


def multihost_batches(
    n_train: int, batch: int, n_val: int, devices: int
) -> tuple[bool, int, int, int]:
    """(drop partial training batches: always, steps per execution, validation batch,
    validation steps) for a multi-host run over ``devices``.

    Every process must get an equal share of every batch (Keras cuts each global batch into
    one piece a process, and JAX assembles them into one array), so batches are multiples of
    the device count and none may be partial: the epoch's last, partial training batch is
    left out (a few different images each shuffled epoch), and validation is padded to whole
    batches with images of weight 0, which accuracy does not count."""
    _check_shares(batch, n_train, devices, "devices")
    steps = n_train // batch
    divisors = [d for d in range(min(steps, MAX_STEPS_PER_EXECUTION), 0, -1) if steps % d == 0]
    if n_val == 0:
        return True, divisors[0], 0, 0
    for spe in divisors:  # the most steps per execution whose padding fills only the last batch
        val_steps = spe * math.ceil(math.ceil(n_val / (MAX_VAL_BATCH * devices)) / spe)
        val_batch = math.ceil(n_val / val_steps / devices) * devices
        if val_steps * val_batch - n_val < val_batch:
            return True, spe, val_batch, val_steps
    raise AssertionError("one step per execution always fits")  # spe 1: one padded batch


def warmup_epochs_for(schedule: str, epochs: int, asked: int | None) -> int:
    if schedule not in DECAYING:
        return 0
    if asked is not None:
        return min(asked, epochs - 1)
    if schedule == "onecycle":  # fastai's fit_one_cycle: up over the first quarter
        return max(1, round(epochs / 4)) if epochs > 1 else 0
    return min(3, max(0, epochs // 10))  # timm warms up over a few percent of a run


def plan_training(
    config,
    n_train: int,
    n_val: int,
    prep: Preprocessing,
    cache_budget_mb: float,
    *,
    labels=None,
    class_names: list[str] | None = None,
    replicas: int = 1,
) -> TrainingPlan:
    """Resolve a config's 'auto' values for a dataset of these sizes; with the training
    ``labels`` and ``class_names``, its class weights too (and a warning on imbalance).
    ``replicas``: the devices a mirrored or multi-host run splits each batch across."""
    reasons: list[str] = []
    weights = _class_weights(config, labels, class_names, reasons) if labels is not None else None
    if config.batch_size == "auto":
        batch, why = auto_batch_size(n_train)
        reasons.append(why)
    else:
        batch = int(config.batch_size)
    steps, spe, val_batch, val_steps, drop_last = _steps(
        config, n_train, batch, n_val, replicas, reasons
    )
    nbytes = (n_train + n_val) * prep.image_bytes
    cache = resolve_cache(config.cache, nbytes, cache_budget_mb)
    if config.cache == "auto":
        reasons.append(
            f"cache {cache}: decoded training and validation images take "
            f"{nbytes / 2**20:,.0f} MiB, budget {cache_budget_mb:,.0f} MiB"
        )
    epochs = config.epochs
    if epochs == "auto":
        epochs = max(AUTO_EPOCHS, math.ceil(MIN_TOTAL_STEPS / steps))
        reasons.append(f"{epochs} epochs: at least {AUTO_EPOCHS}, and {MIN_TOTAL_STEPS:,} steps")
    warmup = warmup_epochs_for(config.schedule, epochs, config.warmup_epochs)
    if warmup:
        reasons.append(f"{config.schedule} schedule after {warmup} warm-up epoch(s)")
    # a decaying schedule gives its best epochs last: no early stop in its first half
    decaying = config.schedule in DECAYING
    early_stop_from = max(warmup, epochs // 2) if decaying else warmup
    augment, mix = resolve_augment(config, prep.channels)
    if "auto" in config.augment or mix:
        shown = [f"{k} {dict(mix)[k]:g}" if k in MIXING else k for k in augment]
        reasons.append(f"augmentation {', '.join(shown)}")
    return TrainingPlan(
        batch_size=batch,
        steps_per_epoch=steps,
        steps_per_execution=spe,
        val_batch_size=val_batch,
        val_steps=val_steps,
        cache=cache,
        schedule=config.schedule,
        warmup_epochs=warmup,
        epochs=epochs,
        augment=tuple(augment),
        early_stop_from=early_stop_from,
        reasons=tuple(reasons),
        class_weights=weights,
        mix=mix,
        drop_last=drop_last,
        val_padded=config.distribute == "multi-host" and n_val > 0,
    )


def _class_weights(config, labels, class_names, reasons: list[str]):
    """The class weights ``config`` asks for (None: none), said in ``reasons``; an imbalance
    left unweighted is said too."""
    note = imbalance_note(labels, class_names)
    weights = class_weights(config.class_weight, labels, class_names)
    if note and weights is None:
        reasons.append(note)
    if weights is not None:
        shown = ", ".join(f"{n} {w:.2f}" for n, w in zip(class_names, weights, strict=True))
        reasons.append(f"class weights ({config.class_weight}): {shown}")
    return weights


def _steps(
    config, n_train: int, batch: int, n_val: int, replicas: int, reasons: list[str]
) -> tuple[int, int, int, int, bool]:
    """(training steps, steps per execution, validation batch, validation steps, whether each
    epoch's last partial batch is dropped) for the strategy, said in ``reasons``."""
    distribute = config.distribute
    steps = math.ceil(n_train / batch)
    most = MAX_STEPS_PER_EXECUTION
    if config.budget_seconds and isinstance(config.epochs, int):
        most = max(1, steps * config.epochs // BUDGET_CALLS)
    spe, val_batch, val_steps = execution_plan(steps, n_val, most)
    drop_last = False
    if distribute == "mirrored":
        # Keras 3's loop of several steps per call fails under MirroredStrategy ("You must
        # feed a value for placeholder tensor", keras-team/keras#19246, open)
        spe = 1
        reasons.append("1 step per execution: several fail under mirrored (keras#19246)")
        drop_last, val_batch = replica_batches(n_train, batch, n_val, replicas)
        val_steps = math.ceil(n_val / val_batch) if n_val else 0
        if drop_last:
            steps = n_train // batch
            reasons.append(
                f"the last {n_train % batch} training image(s) of each shuffled epoch are "
                f"left out: fewer than the {replicas} replicas, they would leave one empty"
            )
        reasons.append(f"validation batch {val_batch}: whole shares for the {replicas} replicas")
    elif distribute == "multi-host":
        drop_last, spe, val_batch, val_steps = multihost_batches(n_train, batch, n_val, replicas)
        if n_train % batch:
            reasons.append(
                f"the last {n_train % batch} training image(s) of each shuffled epoch are left "
                f"out: each of the {replicas} devices needs an equal share of every batch"
            )
            steps = n_train // batch
        reasons.append(
            f"{spe} step(s) per execution; validation {val_steps} batches of {val_batch}, the "
            f"last padded with {val_steps * val_batch - n_val} blank image(s) of weight 0"
        )
    else:
        budget = (
            f", {BUDGET_CALLS} calls in the budget's epochs"
            if most < MAX_STEPS_PER_EXECUTION
            else ""
        )
        reasons.append(
            f"{spe} steps per execution: divides the {steps} training and {val_steps} "
            f"validation steps (validation batch {val_batch}){budget}"
        )
    return steps, spe, val_batch, val_steps, drop_last


def resolve_augment(config, channels: int) -> tuple[tuple[str, ...], tuple]:
    """The augmentation list ('auto', alone or in the list: the geometric defaults, and flip
    for colour images, which mean the same mirrored where digits do not) with `--mixup` and
    `--cutmix` applied: a strength > 0 adds its kind, 0 removes it. Returns the list and
    the (kind, alpha) of each mixing kind in it."""
    auto = (("flip",) if channels == 3 else ()) + DEFAULT_AUGMENT
    kinds = (config.augment,) if config.augment == "auto" else config.augment
    expanded = (k for kind in kinds for k in (auto if kind == "auto" else (kind,)))
    augment = list(dict.fromkeys(expanded))
    for kind in MIXING:
        alpha = getattr(config, kind)
        if alpha is not None and alpha > 0 and kind not in augment:
            augment.append(kind)
        elif alpha == 0 and kind in augment:
            augment.remove(kind)
    mix = tuple((k, float(getattr(config, k) or MIX_STRENGTHS[k])) for k in MIXING if k in augment)
    return tuple(augment), mix
