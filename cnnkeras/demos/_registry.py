"""The demos, declared once: what each trains and the claim it measures (what ``cnnkeras demo
--help`` shows, read without importing TensorFlow), and the module that runs it, whose
function registers itself with ``@register_demo``. A new demo is a module of
``cnnkeras/demos/`` and one ``Demo`` here."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cnnkeras.errors import UserError

SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Demo:
    name: str  # `cnnkeras demo NAME`
    summary: str  # what it trains, in one line
    claim: str  # the lecture's claim it measures
    module: str  # cnnkeras.demos.<module> runs it
    description: str = ""  # the command's help; default: said from the summary
    # the command's integer options besides --seeds: name -> help (the default is the
    # function's)
    options: dict[str, str] = field(default_factory=lambda: {"epochs": "epochs of each network"})
    quick: str = "--seeds 1 --epochs 2"  # a quick look, in the help's examples


DEMOS: dict[str, Demo] = {
    demo.name: demo
    for demo in (
        Demo(
            "batchnorm",
            "the same net with and without batch norm, at two learning rates",
            "batch norm makes training faster and allows higher learning rates",
            "batchnorm",
        ),
        Demo(
            "dropout",
            "the train/validation gap with and without dropout",
            "dropout regularises: a smaller gap between training and validation accuracy",
            "dropout",
        ),
        Demo(
            "activations",
            "a deep plain stack: sigmoid against ReLU",
            "ReLU trains where sigmoid stalls in deep stacks",
            "activations",
        ),
        Demo(
            "residual",
            "plain against residual nets of 20 and 56 layers",
            "skip connections let deep networks train where plain ones degrade",
            "residual",
        ),
        Demo(
            "receptive-field",
            "one 5x5 convolution against two stacked 3x3",
            "two stacked 3x3 convolutions see as much as one 5x5 with fewer parameters",
            "receptive_field",
        ),
        Demo(
            "separable",
            "standard against depthwise-separable convolution",
            "depthwise-separable convolutions cost a fraction of standard ones",
            "separable",
        ),
        Demo(
            "transfer",
            "a pre-trained base against training from scratch on few images",
            "with few labelled images, a pre-trained base beats training from scratch",
            "transfer",
            description="LeNet-5 pre-trained on mnist5k digits 0-4 learns digits 5-9 from K "
            "labelled images per class: frozen base with a new head, then fine-tuned, against "
            "from scratch; prints the table and whether the claim held, and draws the "
            "accuracies.",
            options={"k": "labelled images a class"},
            quick="--k 5 --seeds 1",
        ),
    )
}

_FUNCTIONS: dict[str, Callable[..., dict]] = {}


def register_demo(name: str) -> Callable:
    """Make the decorated function the one that runs demo ``name`` (declared in DEMOS). It
    takes the seeds, then keyword options, and returns ``_harness.result(...)``."""

    def decorate(fn: Callable[..., dict]) -> Callable[..., dict]:
        if name not in DEMOS:
            raise ValueError(f"demo {name!r} is not declared in DEMOS")
        if name in _FUNCTIONS:
            raise ValueError(f"demo {name!r} is already registered")
        _FUNCTIONS[name] = fn
        return fn

    return decorate


def demo_function(name: str) -> Callable[..., dict]:
    """The function that runs demo ``name``, its module imported (TensorFlow with it)."""
    if name not in DEMOS:
        raise UserError(f"unknown demo {name!r}; choose {', '.join(DEMOS)}")
    importlib.import_module(f"cnnkeras.demos.{DEMOS[name].module}")
    return _FUNCTIONS[name]
