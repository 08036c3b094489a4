"""``Abs``: the absolute value as a module, so that models can name it and probes can find it.

Zhang & Yu (arXiv 2105.08911) find that abs resists collapse to constants better than ReLU: it
never zeroes a unit, it only folds the input space.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from variability.probes.activations import ABS, register_activation

__all__ = ["Abs"]


class Abs(nn.Module):
    """``x -> |x|`` elementwise. Active (probe rule) wherever the input is not exactly 0."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.abs(x)


register_activation(Abs, ABS)
