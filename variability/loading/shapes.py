"""What input shape a model takes, as far as the model itself can tell us.

Exact where the file records it (a variability model's ``d_in``, a torch.export program's example
input); a hint from the first layer otherwise (a first Linear layer gives the feature count, a
first convolution only the channels); unknown otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from variability.loading.errors import InputsError

__all__ = [
    "InputHint",
    "format_shape",
    "hint_from_first_layer",
    "parse_shape",
    "show_shape",
]


@dataclass(frozen=True)
class InputHint:
    """The per-sample input shape a model takes (None: not known) and where that comes from.

    ``exact``: the model takes only this shape (inputs of another shape are refused before the
    model runs). ``batch``: a batch size the model is fixed to (a torch.export program exported
    without a dynamic batch dimension), or None. ``vocab``: the model takes token ids below this
    (a text model: generated inputs are token ids, ``--seq-len`` long, at most ``max_length``).
    """

    shape: tuple[int, ...] | None
    source: str
    exact: bool = False
    batch: int | None = None
    vocab: int | None = None
    max_length: int | None = None


UNKNOWN = InputHint(None, "")


def format_shape(shape: tuple[int, ...] | torch.Size) -> str:
    """``(3, 32, 32)`` as ``3,32,32``: the way ``--input-shape`` takes it."""
    return ",".join(str(int(d)) for d in shape)


def show_shape(shape: tuple[int, ...] | torch.Size) -> str:
    """A per-sample shape for messages: ``(3, 32, 32)``, ``(2,)``."""
    return str(tuple(int(d) for d in shape))


def parse_shape(text: str) -> tuple[int, ...]:
    """``--input-shape 3,32,32`` (per sample, without the batch dimension)."""
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise InputsError(
            f"--input-shape {text!r} is not a shape: give positive sizes separated by commas, "
            "per sample without the batch dimension, like 3,32,32"
        )
    return shape


def _layer_kind(module: nn.Module) -> str:
    # TorchScript modules keep their Python class name as original_name
    return str(getattr(module, "original_name", type(module).__name__))


def hint_from_first_layer(model: nn.Module) -> InputHint:
    """The first Linear layer's feature count, or what a first convolution says about channels."""
    for name, module in model.named_modules():
        kind = _layer_kind(module)
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.is_meta:
            continue
        where = f"the first layer {name!r} ({kind})"
        if kind in ("Linear", "Bilinear") and weight.dim() == 2:
            features = int(weight.shape[1])
            return InputHint((features,), f"the first layer {name!r} ({kind}, {features} features)")
        if kind in ("Conv1d", "Conv2d", "Conv3d") and weight.dim() >= 3:
            channels = int(weight.shape[1]) * int(getattr(module, "groups", 1))
            spatial = ", ".join("HWD"[: weight.dim() - 2]) if weight.dim() > 3 else "L"
            return InputHint(
                None, f"{where} takes {channels} channels, so one input is ({channels}, {spatial})"
            )
        if kind == "Embedding":
            vocab = int(weight.shape[0])
            return InputHint(None, f"{where} takes token ids below {vocab}", vocab=vocab)
    return UNKNOWN
