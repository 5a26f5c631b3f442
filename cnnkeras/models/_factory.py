"""``create_model``: a registered model by name, with random, ImageNet or given weights."""

from __future__ import annotations

from pathlib import Path

import keras

from cnnkeras.errors import UserError
from cnnkeras.models._registry import check_option_names, model_info
from cnnkeras.models._weights import imagenet_source, transfer_weights


def create_model(name: str, weights: str | Path | keras.Model | None = None, **options):
    """Build a registered model by name; ``create_model(name)`` is the paper's configuration.

    ``weights`` is None (random), ``"imagenet"`` (official keras.applications checkpoint,
    copied in by :func:`transfer_weights`; needs a network on first use), a ``keras.Model``
    of the same configuration to copy from, or a path to a ``.weights.h5`` file.
    """
    info = model_info(name)
    check_option_names(name, options)
    if isinstance(weights, str) and weights == "imagenet":
        weights = imagenet_source(info, options)
        options = {**options, **dict(info.facts.imagenet_options)}
    model = info.entry(**options)
    if isinstance(weights, keras.Model):
        transfer_weights(weights, model)
    elif weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise UserError(f"weights file {path} does not exist; pass 'imagenet', None or a file")
        model.load_weights(path)
    return model
