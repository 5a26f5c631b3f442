"""Copy weights between two models of the same configuration (keras.applications -> cnnkeras)."""

from __future__ import annotations

import keras

from cnnkeras.errors import UserError
from cnnkeras.models._registry import ModelInfo, list_models, model_info


def _weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if layer.weights]


def transfer_weights(source: keras.Model, target: keras.Model) -> keras.Model:
    """Copy every weight of ``source`` into ``target`` so that both compute the same function.

    Layers are paired by name first (cnnkeras uses keras.applications' layer names where one
    exists) and the rest in graph order, which survives Keras' automatic ``_1`` suffixes.
    Every pair must agree in weight shapes; nothing is written unless all of them do.
    """
    src_layers, dst_layers = _weighted_layers(source), _weighted_layers(target)
    if len(src_layers) != len(dst_layers):
        raise UserError(
            f"cannot copy weights: {source.name} has {len(src_layers)} layers with weights, "
            f"{target.name} has {len(dst_layers)}; build both with the same configuration"
        )
    by_name = {layer.name: layer for layer in src_layers}
    pairs = {id(d): by_name.get(d.name) for d in dst_layers}
    unused = [s for s in src_layers if s.name not in {d.name for d in dst_layers}]
    for dst in dst_layers:
        if pairs[id(dst)] is None:
            pairs[id(dst)] = unused.pop(0)
    plan = []
    for dst in dst_layers:
        src = pairs[id(dst)]
        values = src.get_weights()
        want = [tuple(w.shape) for w in dst.weights]
        got = [tuple(v.shape) for v in values]
        if want != got:
            raise UserError(
                f"cannot copy weights of layer {src.name} {got} into {dst.name} {want}; "
                "build both models with the same input shape, classes and width"
            )
        plan.append((dst, values))
    for dst, values in plan:
        dst.set_weights(values)
    return target


def imagenet_source(info: ModelInfo, options: dict) -> keras.Model:
    """The official keras.applications model with ImageNet weights (downloaded on first use)."""
    if info.keras_application is None:
        raise UserError(
            f"{info.name} has no official ImageNet weights; ones exist for: "
            + ", ".join(_with_imagenet())
        )
    shape = tuple(options.get("input_shape", info.input_shape))
    if shape[-1] != 3:
        raise UserError(f"ImageNet weights need 3-channel input; got input_shape={shape}")
    include_top = options.get("include_top", True)
    if include_top and options.get("num_classes", 1000) != 1000:
        raise UserError(
            "ImageNet weights with include_top=True have 1000 classes; "
            "use include_top=False for a new head (see `cnnkeras finetune`)"
        )
    kwargs = dict(
        weights="imagenet",
        include_top=include_top,
        input_shape=shape,
        pooling=options.get("pooling"),
    )
    if "classifier_activation" in options:
        kwargs["classifier_activation"] = options["classifier_activation"]
    for option in ("alpha", "depth_multiplier"):
        if option in options:
            kwargs[option] = options[option]
    app = getattr(keras.applications, info.keras_application)
    try:
        return app(**kwargs)
    except Exception as err:  # no network, or a configuration Keras publishes no file for
        raise UserError(f"could not load ImageNet weights for {info.name}: {err}") from err


def _with_imagenet() -> list[str]:
    return [name for name in list_models() if model_info(name).keras_application]
