"""Transfer learning: a pre-trained base, frozen, with a new head (phase 1), then optional
fine-tuning of its top layers at a lower learning rate (phase 2).

Batch-norm layers of the base always run in inference mode (the base is called with
``training=False``) and stay frozen in phase 2 unless asked, as in the Keras transfer-learning
guide: updating their statistics on a small new dataset destroys what they learned.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from cnnkeras import _io
from cnnkeras._files import HISTORY_FILE, LR_FIND_FILE, TRAINABLE_FILE
from cnnkeras._keras_internals import producing_layer
from cnnkeras._options import option
from cnnkeras.data import Preprocessing, absolute_spec
from cnnkeras.errors import UserError
from cnnkeras.models import create_model, model_info
from cnnkeras.saved import CONFIG_FILE, load_run_model
from cnnkeras.train._callbacks import last_checkpoint
from cnnkeras.train._config import TrainConfig
from cnnkeras.train._distribute import (
    for_strategy,
    make_strategy,
    replicas,
    scope,
    single_process,
)
from cnnkeras.train._finish import finish_run
from cnnkeras.train._folder import Run, claim_run_dir, start_run
from cnnkeras.train._history import read_history, write_history
from cnnkeras.train._lr_find import auto_lr, lr_find_png, lr_find_record
from cnnkeras.train._optim import compile_for_training
from cnnkeras.train._plan import TrainingPlan
from cnnkeras.train._resume import (
    DONE,
    FRESH,
    ResumeState,
    load_checkpoint,
    read_run,
    relocate,
    resumed_dataset,
)
from cnnkeras.train._run import fit_epochs, resume_training
from cnnkeras.train._setup import load_data, plan_run, seed_everything

# keras.applications' ImageNet preprocessing, as layers (no Lambda): caffe style is BGR with
# the ImageNet mean subtracted (ResNet, VGG); MobileNets expect [-1, 1].
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass
class FinetuneConfig(TrainConfig):
    """The training options of ``TrainConfig`` for a new head on a pre-trained ``base``. The
    architecture, epochs, loss, dropout and builder options come from the base and the
    phases, so they are internal here (not command-line options)."""

    base: str = option(
        "", help="the pre-trained model: a .keras file or imagenet:NAME", required=True
    )
    dataset: str = option(
        "",
        help="the new classes' images: as train's --dataset",
        metavar="SPEC",
        required=True,
    )
    image_size: int | None = option(
        None, help="the size an imagenet: base is built at, in pixels a side", metavar="N"
    )
    epochs_head: int = option(10, help="phase 1: epochs of the new head on the frozen base")
    epochs_finetune: int = option(0, help="phase 2: epochs with the top of the base unfrozen")
    lr_finetune: float = option(1e-4, help="phase 2's learning rate", metavar="LR")
    head_dropout: float = option(0.2, help="dropout before the new classifier", metavar="RATE")
    unfreeze: str | None = option(
        None,
        help="in phase 2, train the whole base (all) or its top N layers with weights",
        flags=("--unfreeze", "--unfreeze-top"),
        metavar="all|N",
    )
    train_bn: bool = option(False, help="let batch-norm layers train too in phase 2")
    arch: str = "finetune"  # set from the base's name
    epochs: int | str = "auto"
    loss: str = "crossentropy"
    dropout: float | None = None
    model_options: dict = field(default_factory=dict)
    precision: str = "float32"  # mixed precision is train's and lr-find's for now


def imagenet_input_layers(style: str | None) -> list[keras.layers.Layer]:
    """Layers that turn 0..255 RGB into what ImageNet weights of an input ``style`` expect
    (``FamilyFacts.imagenet_input``)."""
    if style == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="imagenet_scale")]
    if style == "caffe":
        conv = keras.layers.Conv2D(3, 1, trainable=False, name="imagenet_caffe")
        conv.build((None, None, None, 3))
        kernel = np.zeros((1, 1, 3, 3), "float32")
        for out, src in enumerate((2, 1, 0)):  # RGB -> BGR
            kernel[0, 0, src, out] = 1.0
        conv.set_weights([kernel, -np.array(CAFFE_MEAN_BGR, "float32")])
        return [conv]
    return []  # EfficientNet rescales and normalises inside the model


def feature_extractor(model: keras.Model) -> tuple[keras.Model, str]:
    """The model's convolutional base, and how a new head should pool it.

    Classic nets (LeNet, AlexNet, VGG) end in Flatten and fully connected layers that are
    part of the old classifier: the base is what feeds the Flatten, and the new head flattens
    too. Otherwise the base is everything that feeds the classifier (the last layer with
    weights), and the new head pools globally.
    """
    flatten = [layer for layer in model.layers if isinstance(layer, keras.layers.Flatten)]
    if flatten:
        tensor, pool = flatten[0].input, "flatten"
    else:
        weighted = [layer for layer in model.layers if layer.weights]
        if not weighted:
            raise UserError(f"{model.name} has no layers with weights to transfer")
        tensor, pool = weighted[-1].input, "avg"
        layer = producing_layer(tensor)
        while isinstance(layer, keras.layers.Dropout):
            tensor = layer.input
            layer = producing_layer(tensor)
    return keras.Model(model.inputs, tensor, name=f"{model.name}_features"), pool


def load_base(spec: str, image_size: int | None):
    """(features, head pooling, input layers, preprocessing, description) of a base spec."""
    if spec.startswith("imagenet:"):
        name = spec.split(":", 1)[1]
        info = model_info(name)
        size = info.image_size(image_size)
        base = create_model(
            name, weights="imagenet", include_top=False, input_shape=(size, size, 3)
        )
        prep = Preprocessing(size, size, 3, scale=1.0)  # raw 0..255; the model preprocesses
        described = f"{name} (ImageNet)"
        layers = imagenet_input_layers(info.facts.imagenet_input)
        return base, info.facts.head_pooling, layers, prep, described
    path = Path(spec)
    if not path.exists():
        raise UserError(f"base {spec} does not exist; give a .keras file or imagenet:NAME")
    model, prep, _, _ = load_run_model(path)
    if image_size and image_size != prep.height:
        raise UserError(
            f"the base {path.name} takes {prep.height}x{prep.width} input; "
            f"omit `image_size` (images are resized to it) or pass {prep.height}"
        )
    return *feature_extractor(model), [], prep, path.name


def build_transfer_model(features, pool, input_layers, prep, num_classes, head_dropout):
    """Input -> [preprocessing] -> frozen features (inference mode) -> new head."""
    inputs = keras.Input(prep.input_shape, name="input")
    x = inputs
    for layer in input_layers:
        x = layer(x)
    x = features(x, training=False)
    if len(x.shape) == 4 and pool == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    elif len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if head_dropout:
        x = keras.layers.Dropout(head_dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{features.name.removesuffix('_features')}_transfer")


def set_trainable(features: keras.Model, unfreeze, train_bn: bool = False) -> list[str]:
    """Freeze the base, or unfreeze 'all' / the top N layers with weights; return those."""
    weighted = [layer for layer in features.layers if layer.weights]
    if unfreeze is None:
        chosen = []
    elif str(unfreeze) == "all":
        chosen = weighted
    else:
        n = int(unfreeze)
        if not 0 < n <= len(weighted):
            raise UserError(f"`unfreeze` must be between 1 and {len(weighted)} layers, got {n}")
        chosen = weighted[-n:]
    features.trainable = True
    for layer in features.layers:
        layer.trainable = False
    names = []
    for layer in chosen:
        if isinstance(layer, keras.layers.BatchNormalization) and not train_bn:
            continue
        layer.trainable = True
        names.append(layer.name)
    return names


def trainable_names(model: keras.Model) -> list[str]:
    """Names of the layers whose weights train, nested models included."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += [f"{layer.name}/{n}" for n in trainable_names(layer)]
        elif layer.trainable_weights:
            out.append(layer.name)
    return out


def finetune(config: FinetuneConfig, *, run_dir: str | Path | None = None, verbose: int = 1):
    """Phase 1 (frozen base, new head) and optional phase 2 (fine-tune) into a run folder."""
    config.validate()
    if not config.base or not config.dataset:
        raise UserError("finetune needs a `base` (a .keras file or imagenet:NAME) and a `dataset`")
    if config.unfreeze not in (None, "all") and not str(config.unfreeze).isdigit():
        raise UserError(f"`unfreeze` must be all or a number of layers, got {config.unfreeze!r}")
    if config.epochs_head < 1:
        raise UserError("`epochs_head` must be >= 1")
    if config.epochs_finetune and config.unfreeze is None:
        raise UserError("`epochs_finetune` needs `unfreeze` (a number of layers or 'all')")
    single_process(config.distribute, "finetune")
    config = dataclasses.replace(config, dataset=absolute_spec(config.dataset))
    _io.check_writable(Path(run_dir).parent if run_dir else config.out)
    seed_everything(config.seed)
    data = load_data(config, verbose=verbose)
    strategy = make_strategy(config.distribute, config.devices, verbose)
    with scope(strategy):
        features, pool, input_layers, prep, described = load_base(config.base, config.image_size)
        model = build_transfer_model(
            features, pool, input_layers, prep, data.num_classes, config.head_dropout
        )
    for_strategy(model, strategy)
    if data.channels != prep.channels:
        _io.log(verbose, f"converting {data.channels}-channel images to the base's {prep.channels}")
    set_trainable(features, None)
    head = dataclasses.replace(config, epochs=config.epochs_head)
    plan = plan_run(head, data, prep, verbose, replicas=replicas(model))
    config, found = auto_lr(config, model, plan, data, prep, verbose)  # the head's rate
    compile_for_training(model, config, plan)
    config = dataclasses.replace(config, arch="finetune-" + model.name.removesuffix("_transfer"))
    folder = Path(run_dir) if run_dir else claim_run_dir(config, data.name)
    options = {**config.to_dict(), "base_described": described, **lr_find_record(found)}
    title = f"{described} fine-tuned on {config.dataset}: test split"
    run = start_run(folder, config, options, data, prep, model, plan, title=title, verbose=verbose)
    if found is not None:
        _io.write_bytes(folder / LR_FIND_FILE, lr_find_png(found, title))
    return _phases(run, features, config, verbose=verbose)


def _phases(
    run: Run,
    features: keras.Model,
    config: FinetuneConfig,
    *,
    start_epoch: int = 0,
    state: ResumeState = FRESH,
    in_phase2: bool = False,
    verbose: int,
) -> dict:
    """Phase 1 from ``start_epoch`` (unless ``in_phase2``), then phase 2 (from
    ``start_epoch`` when ``in_phase2``, with the model's optimizer as it is), then the
    report. ``state``: the callbacks' state where the phase goes on."""
    model, folder, plan = run.model, run.folder, run.plan
    phases = {"phase1": _names_with(features, model, None)}
    if config.epochs_finetune:
        unfrozen = set_trainable(features, config.unfreeze, config.train_bn)
        phases.update(phase2_unfrozen=unfrozen, phase2=trainable_names(model))
    tuned = dataclasses.replace(config, lr=config.lr_finetune)
    tuned_plan = dataclasses.replace(plan, epochs=config.epochs_finetune)  # its own schedule
    started = time.perf_counter()
    nan = False
    if not in_phase2:
        set_trainable(features, None)
        checkpoint = fit_epochs(
            run,
            start_epoch=start_epoch,
            epochs=config.epochs_head,
            verbose=verbose,
            state=state,
            extra={"phase": 1},
        )
        nan = checkpoint.nan_epoch is not None
        state, start_epoch = ResumeState(best=(checkpoint.best, checkpoint.best_epoch)), None
        if config.epochs_finetune and not nan:
            set_trainable(features, config.unfreeze, config.train_bn)
            compile_for_training(model, tuned, tuned_plan)  # new trainable weights: a compile
    if config.epochs_finetune and not nan:
        done = sum(1 for r in read_history(folder / HISTORY_FILE) if r.get("phase", 1) == 1)
        checkpoint = fit_epochs(
            dataclasses.replace(run, config=tuned, plan=tuned_plan),
            start_epoch=done if start_epoch is None else start_epoch,
            epochs=done + config.epochs_finetune,
            verbose=verbose,
            state=state,
            extra={"phase": 2},
        )
        nan = checkpoint.nan_epoch is not None
    _io.write_json(folder / TRAINABLE_FILE, phases)
    status = "nan" if nan else "done"
    return finish_run(run, status=status, seconds=time.perf_counter() - started, verbose=verbose)


def _names_with(features: keras.Model, model: keras.Model, unfreeze) -> list[str]:
    set_trainable(features, unfreeze)
    return trainable_names(model)


def resume(run_dir: str | Path, *, dataset: str | None = None, verbose: int = 1) -> dict:
    """Continue a run folder (``train`` or ``finetune``) from its last completed epoch, after a
    crash or a kill, with what it would have seen had it not stopped; ``dataset``: a folder
    run's images where they are now, if they moved. Nothing changes before all is checked."""
    run = Path(run_dir)
    finetuned = "base" in _io.read_json(run / CONFIG_FILE)
    record, plan, config = read_run(run, FinetuneConfig if finetuned else TrainConfig)
    if record.get("status") in DONE:
        _io.log(verbose, f"{run} is complete ({record['status']}); nothing to resume")
        return record.get("result", {})
    resume_run = resume_finetune if finetuned else resume_training
    return resume_run(run, record, plan, config, dataset=dataset, verbose=verbose)


def resume_finetune(
    run: Path,
    record: dict,
    plan: TrainingPlan,
    config: FinetuneConfig,
    *,
    dataset: str | None,
    verbose: int,
) -> dict:
    """Continue an unfinished fine-tuning run (``read_run``'s record, plan and options) from
    its last completed epoch, in the phase it was in (see ``resume``)."""
    config = resumed_dataset(config, dataset)
    last = last_checkpoint(run)
    if last is None:
        raise UserError(
            f"{run} was stopped before its first epoch completed; run the finetune command again"
        )
    seed_everything(config.seed)
    data = load_data(config, run, verbose)
    model, epoch = load_checkpoint(*last)
    features = next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)
    if features is None:
        raise UserError(f"{last[0]} holds no base model; it is not a finetune checkpoint")
    rows = [r for r in read_history(run / HISTORY_FILE) if r["epoch"] <= epoch]
    head = [r for r in rows if r.get("phase", 1) == 1]
    full = ResumeState.from_history(rows, plan.early_stop_from)
    if config.dataset != record["dataset"]:
        relocate(run, record, data)
    write_history(run / HISTORY_FILE, rows)
    full.save_best(model, run, rows)
    prep = Preprocessing.from_dict(record["preprocessing"])
    title = (
        f"{record.get('base_described', config.base)} fine-tuned on {config.dataset}: test split"
    )
    resumed = Run(run, config, plan, data, prep, model, record, title)
    _io.log(verbose, f"resuming {run} after epoch {epoch + 1}")
    if len(rows) > len(head):  # in phase 2: its counters started at its first epoch
        state = ResumeState.from_history(rows, plan.early_stop_from, since=len(head))
        return _phases(
            resumed,
            features,
            config,
            start_epoch=epoch + 1,
            state=state,
            in_phase2=True,
            verbose=verbose,
        )
    if len(head) < config.epochs_head and not full.stopped(config.patience):
        return _phases(
            resumed, features, config, start_epoch=epoch + 1, state=full, verbose=verbose
        )
    # phase 1 had ended: phase 2 starts as it would have, from the last head epoch
    set_trainable(features, config.unfreeze, config.train_bn)
    tuned = dataclasses.replace(config, lr=config.lr_finetune)
    compile_for_training(model, tuned, dataclasses.replace(plan, epochs=config.epochs_finetune))
    return _phases(
        resumed,
        features,
        config,
        start_epoch=len(head),
        state=ResumeState(best=full.best),
        in_phase2=True,
        verbose=verbose,
    )
