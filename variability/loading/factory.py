"""Building a model from code the user names (``--arch package.module:factory``) and fitting a
state dict to it, with a message that names the keys and shapes that differ."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from variability.errors import first_line
from variability.loading.errors import ArchError

__all__ = ["build_from_factory", "cwd_on_path", "fit_state_dict", "parse_arch_kwargs"]

_SHOWN = 5  # names listed per kind of difference before "and N more"


@contextlib.contextmanager
def cwd_on_path() -> Iterator[None]:
    """Let ``import`` find modules in the current directory, as ``python -m`` would."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def parse_arch_kwargs(text: str | None) -> dict[str, Any]:
    """The keyword arguments of ``--arch-kwargs``: a JSON object."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ArchError(f"--arch-kwargs is not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise ArchError(
            f"--arch-kwargs must be a JSON object of keyword arguments, like "
            f"'{{\"width\": 64}}', not a {type(value).__name__}"
        )
    return value


def _import_factory(reference: str) -> Any:
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise ArchError(
            f"--arch {reference!r} is not of the form package.module:factory "
            "(a module to import, a colon, and the function or class that builds the model)"
        )
    try:
        with cwd_on_path():
            target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ArchError(f"--arch: cannot import module {module_name!r} ({error})") from None
    except Exception as error:
        raise ArchError(
            f"--arch: importing module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ArchError(f"--arch: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ArchError(f"--arch: {reference} is a {type(target).__name__}, not callable")
    return target


def build_from_factory(reference: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Import ``package.module:factory`` and call it with ``kwargs``; it must return a Module."""
    factory = _import_factory(reference)
    try:
        model = factory(**dict(kwargs or {}))
    except Exception as error:
        raise ArchError(
            f"--arch: calling {reference}(**{dict(kwargs or {})!r}) failed: "
            f"{type(error).__name__}: {first_line(error)}"
        ) from None
    if not isinstance(model, nn.Module):
        raise ArchError(
            f"--arch: {reference} returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    more = len(names) - _SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def state_dict_differences(
    model: nn.Module, state: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """(missing keys, unexpected keys, shape mismatches as 'key: file (..), model (..)')."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in expected
        if k in state
        and isinstance(state[k], torch.Tensor)
        and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    return missing, unexpected, shapes


def fit_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str, reference: str
) -> None:
    """Load ``state`` into ``model`` exactly, or say which keys and shapes differ."""
    missing, unexpected, shapes = state_dict_differences(model, state)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing from the file: {_listed(missing)}")
        if unexpected:
            parts.append(f"in the file but not in the model: {_listed(unexpected)}")
        if shapes:
            parts.append(f"shapes differ: {_listed(shapes)}")
        raise ArchError(
            f"the state dict in {source} does not fit the model built by --arch {reference} "
            f"({'; '.join(parts)})"
        )
    try:
        model.load_state_dict(dict(state), strict=True)
    except (RuntimeError, KeyError) as error:
        raise ArchError(
            f"the state dict in {source} does not load into the model built by --arch "
            f"{reference} ({first_line(error)})"
        ) from None
