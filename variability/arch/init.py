"""Activations by name, their gains, and the seeded weight initialisations the builders use.

Every random draw takes an explicit ``torch.Generator`` (drawn in float64 on the CPU, then cast), so
a model built from a spec with a seed has the same weights on any machine, and building a model
never moves the global random state.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from variability.arch.abs import Abs
from variability.arch.errors import SpecError

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "activation_gain",
    "init_linear_",
    "kaiming_normal_",
    "make_activation",
    "orthogonal_",
]

LEAKY_SLOPE = 0.01

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
    "abs": Abs,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}
"""The activations a built model may use, by the name its spec stores."""

_GAINS: dict[str, float] = {
    "relu": math.sqrt(2.0),
    "leaky_relu": math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2)),
    "abs": 1.0,
    "sigmoid": 4.0,
    "tanh": 1.0,
}

INITS = ("kaiming", "orthogonal", "torch-kaiming", "torch-orthogonal")
"""Weight initialisations of the Linear (and LCW) layers; Han layers always use their own.

- "kaiming", "orthogonal" (ours): weights at the layer's gain (1 for the first layer, which sees
  the data; ``activation_gain`` after a nonlinearity), zero biases.
- "torch-kaiming", "torch-orthogonal": every Linear layer as PyTorch's own functions with their
  default arguments leave it, which is how published code often initialises (the HanNet and
  FCNet of Yu & Zhang): ``nn.init.kaiming_normal_`` (std ``sqrt(2 / fan_in)`` on every layer,
  the first and the last included) or ``nn.init.orthogonal_`` (gain 1), and ``nn.Linear``'s
  default bias, uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``. LCW layers keep their own rule.
"""


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise SpecError(f"unknown activation {name!r}; known: {known}") from None


def activation_gain(name: str) -> float:
    """The factor that keeps the signal's scale through ``Linear -> phi`` at initialisation.

    ReLU family: ``sqrt(2 / (1 + slope^2))`` (He et al. 2015: half the units pass). Abs: 1 (it
    keeps the second moment exactly). Sigmoid and tanh: ``1 / phi'(0)``, that is 4 and 1, so that
    the layer is variance-preserving in its linear regime, forwards and backwards (for sigmoid,
    4 times LeCun's scale; for an LCW row, ``|w|^2 phi'(0)^2 = 1``).
    """
    try:
        return _GAINS[name]
    except KeyError:
        known = ", ".join(sorted(_GAINS))
        raise SpecError(f"unknown activation {name!r}; known: {known}") from None


def kaiming_normal_(weight: Tensor, gain: float, generator: torch.Generator | None) -> Tensor:
    """``weight ~ N(0, gain^2 / fan_in)`` entrywise, fan_in = weight.shape[1]."""
    std = gain / math.sqrt(weight.shape[1])
    sample = torch.randn(weight.shape, generator=generator, dtype=torch.float64) * std
    with torch.no_grad():
        return weight.copy_(sample)


def init_linear_(
    layer: nn.Linear, init: str, gain: float, generator: torch.Generator | None
) -> nn.Linear:
    """Initialise ``layer`` in place by the rule ``init`` names (see INITS); ``gain`` is the
    layer's gain under our rules (the torch-* rules use PyTorch's fixed gains instead)."""
    if init == "kaiming":
        kaiming_normal_(layer.weight, gain, generator)
    elif init == "orthogonal":
        orthogonal_(layer.weight, gain, generator)
    elif init == "torch-kaiming":
        kaiming_normal_(layer.weight, math.sqrt(2.0), generator)
    elif init == "torch-orthogonal":
        orthogonal_(layer.weight, 1.0, generator)
    else:
        raise ValueError(f"unknown init {init!r}; known: {', '.join(INITS)}")
    with torch.no_grad():
        if init.startswith("torch-"):
            bound = 1.0 / math.sqrt(layer.weight.shape[1])
            uniform = torch.rand(layer.bias.shape, generator=generator, dtype=torch.float64)
            layer.bias.copy_((2.0 * uniform - 1.0) * bound)
        else:
            layer.bias.zero_()
    return layer


def orthogonal_(weight: Tensor, gain: float, generator: torch.Generator | None) -> Tensor:
    """A (semi-)orthogonal matrix times gain: orthonormal rows if rows <= columns, else columns.

    The QR factor of a Gaussian matrix with the signs of R's diagonal folded in, which makes it
    uniformly (Haar) distributed.
    """
    rows, cols = weight.shape
    tall = rows >= cols
    sample = torch.randn(
        (rows, cols) if tall else (cols, rows), generator=generator, dtype=torch.float64
    )
    q, r = torch.linalg.qr(sample)
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1.0
    q = q * signs
    if not tall:
        q = q.t()
    with torch.no_grad():
        return weight.copy_(q * gain)
