"""Mean and second moment of an activation's output for a Gaussian input: the step of
AutoInit's analytic tracking (Bingham & Miikkulainen 2023) that crosses a nonlinearity.

AutoInit derives closed forms for common activations and integrates the others numerically;
here every activation is integrated the same way, on a fine grid (the trapezoid rule on
[-12, 12] standard deviations), which is exact to about 1e-8 for ReLU's kink and smooth
activations alike. ReLU has the closed forms ``E[relu(z)] = s / sqrt(2 pi)`` and
``E[relu(z)^2] = s^2 / 2`` for ``z ~ N(0, s^2)``; the tests check the integral against them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

GRID_POINTS = 48_001
GRID_HALF_WIDTH = 12.0


def gaussian_moments(
    phi: Callable[[Tensor], Tensor],
    mean: float,
    std: float,
    dtype: torch.dtype = torch.float32,
) -> tuple[float, float]:
    """``(E[phi(z)], E[phi(z)^2])`` for ``z ~ N(mean, std^2)``; ``phi`` is applied to a float
    tensor of ``dtype`` (the model's), and its values summed in float64."""
    t = torch.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS, dtype=torch.float64)
    step = float(t[1] - t[0])
    weight = torch.exp(-0.5 * t * t) / math.sqrt(2 * math.pi) * step
    weight[0] *= 0.5
    weight[-1] *= 0.5
    with torch.no_grad():
        a = phi((mean + std * t).to(dtype)).double()
    return float((weight * a).sum()), float((weight * a * a).sum())
