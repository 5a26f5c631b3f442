"""The cnnkeras model zoo: a registry of Keras functional-API builders."""

from cnnkeras.models import alexnet, efficientnet, googlenet, lenet, mobilenet, resnet, vgg
from cnnkeras.models._registry import ModelInfo, create_model, list_models, model_info
from cnnkeras.models._stats import count_macs, layer_table
from cnnkeras.models._weights import transfer_weights
from cnnkeras.models.efficientnet import efficientnet as efficientnet  # noqa: F811

__all__ = [
    "ModelInfo",
    "count_macs",
    "create_model",
    "efficientnet",
    "layer_table",
    "list_models",
    "model_info",
    "transfer_weights",
]
del alexnet, googlenet, lenet, mobilenet, resnet, vgg
