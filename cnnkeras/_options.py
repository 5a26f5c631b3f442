"""Config fields that are also command-line options.

A config dataclass (``TrainConfig``, ``FinetuneConfig``, ``Experiment``) declares each
user-facing field with ``option(...)``: its help text and choices sit beside its default.
``add_options`` makes the argparse options of the CLI from them, in the help groups of
``GROUPS``; ``given`` reads the values back, and ``check_choices`` refuses a value outside the
choices with the same words for Python and command-line users. A field without help is
internal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import typing
from collections.abc import Collection
from dataclasses import MISSING, field, fields
from typing import Any

from cnnkeras.errors import UserError

# The help groups of `--help`, in their order, and the config fields each holds; a field that
# is an option must be in one (tests/test_help.py). Flags the CLI adds by hand name their group.
GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("dataset", "image_size", "resize", "seed", "cache", "cache_budget_mb"),
    "model": ("arch", "base", "dropout", "head_dropout", "model_options"),
    "training": (
        "epochs",
        "batch_size",
        "optimizer",
        "lr",
        "schedule",
        "warmup_epochs",
        "momentum",
        "loss",
        "weight_decay",
        "class_weight",
        "patience",
        "epochs_head",
        "epochs_finetune",
        "lr_finetune",
        "unfreeze",
        "train_bn",
        "precision",
    ),
    "recipe": ("augment", "mixup", "cutmix", "ema", "label_smoothing", "scores", "target_accuracy"),
    "search": ("name", "tuner", "max_trials", "objective", "retry_failed"),
    "output": ("out", "directory"),
    "scale-out": ("distribute", "devices"),
}
_GROUP_OF = {name: group for group, names in GROUPS.items() for name in names}


def option(
    default: Any = MISSING,
    *,
    help: str,
    choices: tuple | dict | None = None,
    flags: tuple[str, ...] = (),
    metavar: str | None = None,
    off: str | None = None,
    off_help: str | None = None,
    required: bool = False,
    default_factory: Any = MISSING,
) -> Any:
    """A dataclass field that the CLI shows as an option.

    ``flags`` replaces the flag made from the name (``--cache-budget`` for
    ``cache_budget_mb``); ``off`` adds a flag that sets an empty value (``--no-augment``),
    which ``off_help`` describes."""
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "flags": flags,
        "metavar": metavar,
        "off": off,
        "off_help": off_help,
        "required": required,
    }
    return field(default=default, default_factory=default_factory, metadata=metadata)


def check_choices(config) -> None:
    """Refuse a field value outside its ``choices``, naming the field."""
    for f in fields(config):
        choices = f.metadata.get("choices")
        value = getattr(config, f.name)
        if choices and value is not None and value not in choices:
            raise UserError(
                f"`{f.name}` must be one of {', '.join(map(str, choices))}, got {value!r}"
            )


def key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, {"none": None, "true": True, "false": False}.get(value.lower(), value)


def _auto_or(number: type) -> typing.Callable[[str], object]:
    """A flag reader of 'auto' or a ``number`` (int or float)."""

    def read(text: str):
        if text == "auto":
            return text
        try:
            return number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected auto or a number, got {text!r}") from None

    return read


def _auto_list(text: str) -> tuple[str, ...] | str:
    return text if text == "auto" else tuple(k.strip() for k in text.split(",") if k.strip())


def _value_type(hint) -> typing.Callable[[str], object]:
    """How to read a config field of type ``hint`` from its flag's text."""
    kinds = set(typing.get_args(hint) or (hint,)) - {type(None)}
    if kinds in ({int, str}, {float, str}):
        return _auto_or(int if int in kinds else float)
    if any(typing.get_origin(k) is tuple for k in kinds):
        return _auto_list
    return next((t for t in (int, float) if t in kinds), str)


def flag_group(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The help group ``title`` of ``parser``, made once, in ``GROUPS``' order."""
    for group in parser._action_groups:  # argparse has no public lookup of its groups
        if group.title == title:
            return group
    return parser.add_argument_group(title)


def with_default(help: str, default: Any) -> str:
    """``help`` with its default in the one style of every flag: ``(default: X)`` at the end."""
    if any(default is v for v in (MISSING, None, False, argparse.SUPPRESS)) or default in ("", ()):
        return help
    return f"{help} (default: {default})"


def add_options(
    parser: argparse.ArgumentParser, cls: type, only: Collection[str] | None = None
) -> None:
    """One argparse option per field of ``cls`` declared with ``option`` (of those named in
    ``only``, when given), each in its group of ``GROUPS``.

    Absent options stay absent (``SUPPRESS``), so the dataclass or an experiment file keeps
    its default; the help says what that default is."""
    hints = typing.get_type_hints(cls)
    documented = [
        f
        for f in dataclasses.fields(cls)
        if "help" in f.metadata and (only is None or f.name in only)
    ]
    # in GROUPS' order, whatever class of a hierarchy declares each
    order = {name: i for i, name in enumerate(n for names in GROUPS.values() for n in names)}
    documented.sort(key=lambda f: order.get(f.name, len(order)))
    for title in GROUPS:  # the groups first, so that they print in their order
        if any(_GROUP_OF.get(f.name) == title for f in documented):
            flag_group(parser, title)
    for f in documented:
        meta = f.metadata
        group = flag_group(parser, _GROUP_OF[f.name])
        flags = meta["flags"] or ("--" + f.name.replace("_", "-"),)
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS}
        kwargs["help"] = with_default(meta["help"], f.default)
        if hints[f.name] is bool:
            kwargs["action"] = "store_true"
        elif hints[f.name] is dict:
            kwargs.update(type=key_value, action="append")
        else:
            kwargs["type"] = _value_type(hints[f.name])
        if meta["choices"]:
            kwargs["choices"] = meta["choices"]
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        elif kwargs.get("type") in (int, float):  # not the field's name in capitals
            kwargs["metavar"] = "N" if kwargs["type"] is int else "X"
        group.add_argument(*flags, required=meta["required"], **kwargs)
        if meta["off"]:
            group.add_argument(
                meta["off"],
                dest=f.name,
                action="store_const",
                const=(),
                default=argparse.SUPPRESS,
                help=meta["off_help"],
            )


def given(args: argparse.Namespace, cls: type) -> dict:
    """The fields of ``cls`` that were given on the command line."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name in args}
    return {k: dict(v) if isinstance(v, list) else v for k, v in given.items()}


# ---------------------------------------------------------------- parameters -> flags
_PARAM = re.compile(r"`([a-z][a-z0-9_]*)`")


def _option_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Parameter (argparse dest) -> its longest flag, over every subcommand."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public listing of its options
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags.update(_option_flags(sub))
        elif action.option_strings and action.dest not in flags:
            flags[action.dest] = max(action.option_strings, key=len)
    return flags


def as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """A library message with its `parameters` named as the command line's flags."""
    flags = _option_flags(parser)
    return _PARAM.sub(lambda m: flags.get(m[1], m[1]), message)
