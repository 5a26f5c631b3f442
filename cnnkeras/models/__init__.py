"""The cnnkeras model zoo: a registry of Keras functional-API builders."""

# Importing a family module registers its models.
from cnnkeras.models import alexnet, googlenet, lenet, mobilenet, resnet, vgg  # noqa: F401
from cnnkeras.models._factory import create_model
from cnnkeras.models._registry import (
    FAMILIES,
    FamilyFacts,
    ModelInfo,
    check_option_names,
    list_models,
    model_info,
    register_model,
)
from cnnkeras.models._stats import (
    count_macs,
    layer_table,
    model_totals,
    summary_text,
    zoo_table,
    zoo_text,
)
from cnnkeras.models._weights import transfer_weights

# The compound-scaling builder; it takes the name of its module in this namespace.
from cnnkeras.models.efficientnet import efficientnet

__all__ = [
    "FAMILIES",
    "FamilyFacts",
    "ModelInfo",
    "check_option_names",
    "count_macs",
    "create_model",
    "efficientnet",
    "layer_table",
    "list_models",
    "model_info",
    "model_totals",
    "register_model",
    "summary_text",
    "transfer_weights",
    "zoo_table",
    "zoo_text",
]
