"""The model registry: ``@register_model`` entry points, ``list_models`` and ``model_info``.

Modelled on timm's registry and torchvision's ``_api``: every architecture is reachable by
name, duplicates are refused, and unknown names or options are user errors that say what to do.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import keras

from cnnkeras.errors import UserError
from cnnkeras.models._layers import MIN_SIZE, check_options


@dataclass(frozen=True)
class FamilyFacts:
    """What the code around a family needs to know of it besides how to build it."""

    input_scale: float = 1 / 255  # model input = pixel (0..255) * input_scale
    imagenet_input: str | None = None  # how its ImageNet weights want input: see FAMILIES
    head_pooling: str = "avg"  # how a new classifier head reads the base: "avg" or "flatten"
    # builder options that make the model compute as the keras.applications model whose
    # ImageNet weights it takes
    imagenet_options: tuple[tuple[str, object], ...] = ()


# "tf": RGB scaled to -1..1; "caffe": BGR minus the ImageNet mean; None: done inside the model
# or no ImageNet weights. Classic nets end in Flatten and fully connected layers: a new head
# flattens their last feature map too.
FAMILIES = {
    "lenet": FamilyFacts(head_pooling="flatten"),
    "alexnet": FamilyFacts(head_pooling="flatten"),
    "vgg": FamilyFacts(imagenet_input="caffe", head_pooling="flatten"),
    "googlenet": FamilyFacts(),
    "resnet": FamilyFacts(imagenet_input="caffe"),
    "mobilenet": FamilyFacts(imagenet_input="tf"),
    # rescales and normalises 0..255 input inside the model, as keras.applications does
    "efficientnet": FamilyFacts(input_scale=1.0, imagenet_options=(("imagenet_stddev_fix", True),)),
}


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of one model besides how to build it."""

    name: str
    family: str
    paper: str
    input_shape: tuple[int, int, int]
    num_classes: int
    min_size: int
    entry: Callable[..., keras.Model] = field(repr=False)
    builder: Callable[..., keras.Model] = field(repr=False)
    keras_application: str | None = None

    @property
    def options(self) -> tuple[str, ...]:
        """The keyword options this model accepts (those of its family builder)."""
        params = inspect.signature(self.builder).parameters.values()
        return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)

    @property
    def facts(self) -> FamilyFacts:
        return FAMILIES[self.family]

    def image_size(self, asked: int | None = None) -> int:
        """The side of the square input: ``asked``, or the paper's."""
        return asked or self.input_shape[0]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    paper: str,
    builder: Callable[..., keras.Model],
    input_shape: tuple[int, int, int] = (224, 224, 3),
    num_classes: int = 1000,
    min_size: int = MIN_SIZE,
    keras_application: str | None = None,
    facts: FamilyFacts | None = None,
):
    """Register a small entry function under its own name; a second registration fails.
    ``family`` is one of FAMILIES, or a new family with its ``facts`` (a model registered
    from outside the package).

    The registration holds the model's canonical input, classes and minimum size: the entry
    point returned takes them as defaults and checks the options every family shares (see
    ``check_options``) before it builds, so the builders need neither."""

    def decorate(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        if facts is not None and FAMILIES.setdefault(family, facts) != facts:
            raise ValueError(f"family {family!r} is registered with other facts")
        if family not in FAMILIES:
            raise ValueError(f"family {family!r} of {name!r} is new: pass its `facts`")

        @functools.wraps(fn)
        def entry(**options) -> keras.Model:
            options = {"input_shape": tuple(input_shape), "num_classes": num_classes, **options}
            check_options(name, builder, min_size, options)
            return fn(**options)

        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            paper=paper,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            min_size=min_size,
            entry=entry,
            builder=builder,
            keras_application=keras_application,
        )
        return entry

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, in registration order."""
    return [name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern)]


def model_info(name: str) -> ModelInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(close)}?" if close else "run `cnnkeras models` to list them"
        )
        raise UserError(f"unknown model {name!r}; {hint}") from None


def check_option_names(name: str, options: dict) -> None:
    """Refuse builder options that model ``name`` does not take (before any training)."""
    info = model_info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        raise UserError(
            f"{name} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(info.options)}"
        )
