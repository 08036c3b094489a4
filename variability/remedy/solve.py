"""Per-unit scale and bias that give a site's pre-activation its target (docs/figures.md).

Pure functions of per-unit samples or moments, so each can be checked by hand. A site's
pre-activation after the change is modelled as ``z' = alpha * u + beta + r``: ``u`` the
producing layer's output without its bias (``alpha`` scales the unit's weights), ``beta`` the
new bias, ``r`` whatever the site adds on other paths (a residual input; 0 when the site reads
the layer's output itself).

- ``quantile_solution`` (LSUV, measured): ``beta`` puts the split point of ``z'`` (the value
  with a fraction ``above`` of the samples above it) at 0 and ``alpha`` makes the second moment
  of ``z'`` about 0 equal ``target``, both exactly on the samples.
- ``gaussian_solution`` (AutoInit-style, predicted): the same two conditions for a Gaussian
  ``z'`` of the given mean and variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import torch
from torch import Tensor

CONSTANT_LEVEL = 1e-5
"""A unit whose standard deviation over the probe set is at most this times its RMS is called
constant: float32 rounding is about 1e-7, so scaling it up would only amplify rounding."""


@dataclass(frozen=True)
class Solution:
    """Per unit: the weight factor, the new bias, and whether the target was reachable."""

    alpha: Tensor
    beta: Tensor
    reachable: Tensor  # bool


def split_points(values: Tensor, above: float) -> Tensor:
    """Per column of ``values`` (samples x units), a value with a fraction ``above`` of the
    samples strictly above it: the midpoint between the two order statistics around the split.
    Where tied samples straddle the split, the split moves to the nearer end of the tie, so the
    fraction above is the achievable one closest to ``above``."""
    samples = values.shape[0]
    if samples == 1:
        return values[0] - 1.0 if above >= 0.5 else values[0] + 1.0
    wanted = samples * (1.0 - above)  # samples at or below the split
    k = min(max(round(wanted), 1), samples - 1)
    rows = values.t().contiguous()  # one unit per row
    below = torch.kthvalue(rows, k, dim=1).values  # selection, cheaper than sorting
    over = torch.kthvalue(rows, k + 1, dim=1).values
    tie = below == over
    if bool(tie.any()):
        below[tie], over[tie] = _around_tie(rows[tie], wanted, k)
    return 0.5 * (below + over)


def _around_tie(rows: Tensor, wanted: float, k: int) -> tuple[Tensor, Tensor]:
    """For units whose k-th and (k+1)-th smallest are equal: the order statistics on either
    side of the tie's nearer end (or of the split itself, for a unit that is all one value)."""
    samples = rows.shape[1]
    ordered = torch.sort(rows, dim=1).values
    value = ordered[:, k : k + 1].contiguous()
    low = torch.searchsorted(ordered, value, right=False)  # the tie's first index
    high = torch.searchsorted(ordered, value, right=True)  # one past its last
    low_ok, high_ok = low >= 1, high <= samples - 1
    prefer_low = (wanted - low).abs() <= (high - wanted).abs()
    split = torch.where((prefer_low & low_ok) | ~high_ok, low, high)
    split = torch.where(low_ok | high_ok, split, torch.full_like(split, k))
    return ordered.gather(1, split - 1).squeeze(1), ordered.gather(1, split).squeeze(1)


def constant_units(u: Tensor) -> Tensor:
    """Units (columns) whose samples do not vary, at float32 precision (``CONSTANT_LEVEL``)."""
    std = u.std(dim=0, unbiased=False) if u.shape[0] > 1 else torch.zeros(u.shape[1])
    rms = u.square().mean(dim=0).sqrt()
    return std <= CONSTANT_LEVEL * rms


def quantile_solution(
    u: Tensor,
    r: Tensor | None,
    target: float,
    above: float,
    *,
    shift: bool = True,
    iterations: int = 50,
    tolerance: float = 1e-9,
) -> Solution:
    """LSUV per unit on samples: ``alpha > 0`` and ``beta`` such that ``z' = alpha u + beta + r``
    has a fraction ``above`` of its samples above 0 and ``mean(z'^2) = target``.

    With ``r`` None (the site reads the layer's output) it is one formula: ``q`` the split point
    of ``u``, ``alpha = sqrt(target / mean((u - q)^2))``, ``beta = -alpha q``. With ``r`` the
    split point ``q`` of ``alpha u + r`` moves with ``alpha``: for the current ``q``, ``alpha``
    is the positive root of ``mean((alpha u + r - q)^2) = target``, then ``q`` is taken again,
    until it stops moving; ``beta = -q``. Without a bias to set (``shift=False``) ``q`` is 0
    and ``beta`` 0 (the caller keeps no bias). Unreachable: a unit that does not vary over the
    samples, or (with ``r``) one whose other paths alone exceed the target.
    """
    u = u.double()
    reachable = ~constant_units(u)
    units = u.shape[1]
    zero = torch.zeros(units, dtype=torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    if r is None:
        q = split_points(u, above) if shift else zero
        spread = (u - q).square().mean(dim=0)
        alpha = torch.sqrt(target / spread.clamp_min(tiny))
        return _finish(alpha, -alpha * q, reachable)
    r = r.double()
    square = u.square().mean(dim=0).clamp_min(tiny)
    q = split_points(u + r, above) if shift else zero
    alpha = torch.ones(units, dtype=torch.float64)
    converged = torch.zeros(units, dtype=torch.bool)
    for _ in range(iterations):
        d = r - q
        half_b = (u * d).mean(dim=0)
        c = d.square().mean(dim=0) - target
        discriminant = half_b * half_b - square * c
        alpha = (-half_b + discriminant.clamp_min(0.0).sqrt()) / square
        reachable &= discriminant >= 0
        if not shift:
            converged = torch.ones(units, dtype=torch.bool)
            break
        moved = split_points(alpha * u + r, above)
        converged = (moved - q).abs() <= tolerance * math.sqrt(target)
        q = moved
        if bool(converged.all()):
            break
    return _finish(alpha, -q, reachable & converged & (alpha > CONSTANT_LEVEL))


def gaussian_solution(
    mean: Tensor,
    variance: Tensor,
    target: float,
    above: float,
    *,
    other_mean: Tensor | None = None,
    other_variance: Tensor | None = None,
    covariance: Tensor | None = None,
    shift: bool = True,
) -> Solution:
    """AutoInit-style per unit: treat ``u`` (and ``r``) as Gaussian with these moments and
    choose ``alpha``, ``beta`` so that ``z' = alpha u + beta + r`` has ``P(z' > 0) = above`` and
    ``E[z'^2] = target``: with ``g`` the standard normal quantile of ``above``, ``z'`` must have
    standard deviation ``s = sqrt(target / (1 + g^2))`` and mean ``g s``. Without ``r``:
    ``alpha = s / sqrt(variance)``, ``beta = g s - alpha mean``. With ``r``: ``alpha`` is the
    positive root of ``variance alpha^2 + 2 covariance alpha + other_variance = s^2``. Without
    a bias to set (``shift=False``): ``alpha = sqrt(target / (variance + mean^2))``, ``beta`` 0."""
    mean, variance = mean.double(), variance.double()
    g = NormalDist().inv_cdf(above)
    s = math.sqrt(target / (1.0 + g * g))
    reachable = variance > 0
    safe = variance.clamp_min(torch.finfo(torch.float64).tiny)
    if not shift:
        moment = (variance + mean * mean).clamp_min(torch.finfo(torch.float64).tiny)
        return _finish(torch.sqrt(target / moment), torch.zeros_like(mean), reachable)
    if other_variance is None:
        alpha = s / safe.sqrt()
        beta = g * s - alpha * mean
        return _finish(alpha, beta, reachable)
    assert other_mean is not None and covariance is not None
    c = covariance.double()
    discriminant = c * c - variance * (other_variance.double() - s * s)
    root = discriminant.clamp_min(0.0).sqrt()
    alpha = (-c + root) / safe
    reachable &= (discriminant >= 0) & (alpha > 0)
    beta = g * s - alpha * mean - other_mean.double()
    return _finish(alpha, beta, reachable)


def _finish(alpha: Tensor, beta: Tensor, reachable: Tensor) -> Solution:
    finite = torch.isfinite(alpha) & torch.isfinite(beta) & (alpha > 0)
    ok = reachable & finite
    return Solution(
        torch.where(ok, alpha, torch.ones_like(alpha)),
        torch.where(ok, beta, torch.zeros_like(beta)),
        ok,
    )
