"""Plain ``.safetensors`` weights: a state dict in a format that holds tensors and nothing else.

Told from its bytes, like every model file: an 8-byte little-endian header length, then a JSON
header that opens with ``{``. It carries no architecture, so it needs ``--arch``, as a state dict
does; the tensors are read by the ``safetensors`` package, which runs no code from the file.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from variability.arch.errors import CorruptModelFileError
from variability.errors import UserError, first_line
from variability.loading.errors import ArchError
from variability.loading.factory import build_from_factory, fit_state_dict
from variability.loading.models import LoadedModel
from variability.loading.shapes import hint_from_first_layer

__all__ = ["is_safetensors", "load_safetensors"]

_HEADER_LENGTH = 8


def is_safetensors(path: Path) -> bool:
    """Whether the file's bytes open as a safetensors file does (never from its name)."""
    if not path.is_file():
        return False
    with open(path, "rb") as stream:
        head = stream.read(_HEADER_LENGTH + 1)
    if len(head) <= _HEADER_LENGTH or head[_HEADER_LENGTH : _HEADER_LENGTH + 1] != b"{":
        return False
    header = int.from_bytes(head[:_HEADER_LENGTH], "little")
    return 2 <= header <= path.stat().st_size - _HEADER_LENGTH


def load_safetensors(
    file: Path, arch: str | None, arch_kwargs: Mapping[str, Any] | None
) -> LoadedModel:
    """The model ``arch`` builds, with the weights in ``file``."""
    try:
        safetensors_torch = importlib.import_module("safetensors.torch")
    except ImportError:
        raise UserError(
            "reading .safetensors weights needs safetensors: pip install safetensors"
        ) from None
    try:
        state = safetensors_torch.load_file(str(file), device="cpu")
    except Exception as error:
        raise CorruptModelFileError(
            f"{file} is a damaged .safetensors file ({first_line(error)})", file
        ) from None
    if arch is None:
        raise ArchError(
            f"{file} holds .safetensors weights ({len(state)} tensors) but not the architecture "
            "they belong to: pass --arch package.module:factory (and --arch-kwargs '{...}' for "
            "its arguments) to build the model"
        )
    model = build_from_factory(arch, arch_kwargs)
    fit_state_dict(model, state, str(file), arch)
    return LoadedModel(
        model,
        file,
        "safetensors weights",
        f".safetensors weights, {len(state)} tensors, in a {type(model).__name__} built by {arch}",
        hint_from_first_layer(model),
    )
