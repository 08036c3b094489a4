"""Active sets as unions of intervals of the pre-activation ``z``.

Why: the active test ``|phi'(z)| >= tau * max|phi'|`` of every activation of docs/figures.md but
PReLU holds on a union of at most a few intervals of z, fixed once tau is. Tested as ``low <= z
<= high``, it costs comparisons instead of the derivative (for GELU an erf and an exp per value,
a third of a transformer probe's time), and the compiled kernel (kernels.py) counts it in the
pass it makes over z anyway.

Exactness: each bound is turned into a closed bound exact in the data's precision (``z > 0`` in
float32 is ``z >= 1.4e-45``), so the kernel, comparing in float64, and PyTorch, comparing in the
data's precision, count the same values. Bounds found numerically (GELU, SiLU, Mish) are roots
of ``|phi'(z)| - tau * peak`` refined by bisection to float64 precision.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Interval:
    """``low <= z <= high``, each end open instead when not ``*_closed``; ends may be infinite."""

    low: float
    high: float
    low_closed: bool = True
    high_closed: bool = True


Intervals = tuple[Interval, ...]
ABOVE_ZERO = Interval(0.0, math.inf, low_closed=False)
EVERYWHERE = Interval(-math.inf, math.inf)

_NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _next(value: float, kind: type, toward: float) -> float:
    return float(np.nextafter(kind(value), kind(toward)))


@functools.lru_cache(maxsize=256)
def exact_bounds(intervals: Intervals, dtype: torch.dtype) -> np.ndarray:
    """``(k, 2)`` float64 closed bounds: ``low <= z <= high`` for a z of ``dtype`` exactly when
    z lies in the interval (an empty interval is left out)."""
    kind = _NUMPY.get(dtype, np.float32)
    rows = []
    for interval in intervals:
        low, high = float(interval.low), float(interval.high)
        rounded = float(kind(low))  # type: ignore[arg-type]  # a NumPy float type
        low = rounded if rounded >= low else _next(rounded, kind, math.inf)  # least z >= low
        if not interval.low_closed and low <= interval.low:
            low = _next(low, kind, math.inf)
        rounded = float(kind(high))  # type: ignore[arg-type]  # a NumPy float type
        high = rounded if rounded <= high else _next(rounded, kind, -math.inf)
        if not interval.high_closed and high >= interval.high:
            high = _next(high, kind, -math.inf)
        if low <= high:
            rows.append((low, high))
    bounds = np.array(rows, dtype=np.float64).reshape(-1, 2)
    bounds.flags.writeable = False  # shared by every caller (cached)
    return bounds


def inside(z: Tensor, intervals: Intervals) -> Tensor:
    """Boolean tensor: where z lies in one of the intervals."""
    if z.dtype not in _NUMPY:
        z = z.float()
    bounds = exact_bounds(intervals, z.dtype)
    result: Tensor | None = None
    for low, high in bounds.tolist():
        if math.isinf(low) and math.isinf(high):
            part = z == z  # every value but NaN
        elif math.isinf(low):
            part = z <= high
        elif math.isinf(high):
            part = z >= low
        else:
            part = (z >= low) & (z <= high)
        result = part if result is None else result | part
    if result is None:
        return torch.zeros_like(z, dtype=torch.bool)
    return result


def active_set(intervals: Callable[[float], Intervals]) -> Callable[[Tensor, float], Tensor]:
    """The active test ``(z, tau) -> bool tensor`` of an activation given by its intervals."""

    def active(z: Tensor, tau: float) -> Tensor:
        return inside(z, intervals(tau))

    return active


def derivative_intervals(
    derivative: Callable[[Tensor], Tensor], span: float = 20.0, points: int = 400_001
) -> Callable[[float], Intervals]:
    """``tau -> Intervals`` where ``|derivative| >= tau * max|derivative|``, for a smooth
    activation whose slope settles to constants beyond ``span`` (GELU, SiLU, Mish)."""
    grid = torch.linspace(-span, span, points, dtype=torch.float64)
    slope = derivative(grid).abs()
    peak = float(slope.max())

    def gap(z: float) -> float:
        return float(derivative(torch.tensor([z], dtype=torch.float64)).abs()[0])

    @functools.lru_cache(maxsize=32)
    def intervals(tau: float) -> Intervals:
        level = tau * peak
        above = (slope >= level).numpy()
        values = grid.numpy()
        edges = np.flatnonzero(above[1:] != above[:-1])
        roots = [_bisect(gap, level, values[i], values[i + 1], bool(above[i])) for i in edges]
        found: list[Interval] = []
        start = -math.inf if above[0] else None
        for root, rising in zip(roots, [not above[i] for i in edges], strict=True):
            if rising:
                start = root
            else:
                found.append(Interval(start, root))  # type: ignore[arg-type]
                start = None
        if start is not None:
            found.append(Interval(start, math.inf))
        return tuple(found)

    intervals.peak = peak  # type: ignore[attr-defined]
    return intervals


def _bisect(
    gap: Callable[[float], float], level: float, low: float, high: float, low_in: bool
) -> float:
    """The boundary between ``low`` (in the set iff ``low_in``) and ``high``, to float64."""
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if (gap(middle) >= level) == low_in:
            low = middle
        else:
            high = middle
    return high if not low_in else low
