"""The formulas of DEFINITIONS.md, one site at a time in plain scalar form: the tests' reference.

The toolkit computes every figure once, vectorised over all sites (variability/probes/figures.py,
assembled by results.py). These are the same definitions written the plain way, for one site's
per-unit moments (float64 NumPy arrays), so that tests can check the product against them site by
site (tests/probes/test_figures.py). Nothing in the package imports this file.
"""

from __future__ import annotations

import math

import numpy as np


def variability(variance: np.ndarray, mean_square: np.ndarray) -> float:
    """V = sqrt(sum_j var_j / sum_j E_j[a^2]); 0 where the denominator is 0."""
    denominator = float(mean_square.sum())
    if denominator <= 0.0:
        return 0.0
    return math.sqrt(max(float(variance.sum()), 0.0) / denominator)


def unit_activation_ratio(active: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per unit, the fraction of its samples where it is active; NaN for a unit never seen."""
    ratio = active / np.maximum(count, 1.0)
    ratio[count <= 0] = np.nan
    return ratio


def activation_ratio(active: np.ndarray, count: np.ndarray) -> float:
    """Fraction of (unit, sample) pairs where the unit is active."""
    total = float(count.sum())
    return float(active.sum()) / total if total > 0 else float("nan")


def dead_units(unit_ratio: np.ndarray) -> int:
    """Units never active over the whole probe set (unit activation ratio exactly 0)."""
    return int(np.count_nonzero(unit_ratio == 0.0))


def linear_units(unit_ratio: np.ndarray) -> int:
    """Units always active over the whole probe set: never gated, so they act linearly."""
    return int(np.count_nonzero(unit_ratio == 1.0))


def constant_units(variance: np.ndarray, mean_square: np.ndarray, tolerance: float) -> np.ndarray:
    """Mask of units whose std is at most ``tolerance`` times the RMS of the whole site."""
    seen = mean_square.size
    rms = math.sqrt(float(mean_square.sum()) / seen) if seen else 0.0
    return np.sqrt(np.maximum(variance, 0.0)) <= tolerance * rms


def unit_activation_shift(mean: np.ndarray, mean_square: np.ndarray) -> np.ndarray:
    """Per unit, |E[z_j]| / sqrt(E[z_j^2]); 0 for a unit with E[z_j^2] = 0."""
    ratio = np.zeros_like(mean)
    np.divide(np.abs(mean), np.sqrt(mean_square), out=ratio, where=mean_square > 0)
    return ratio


def activation_shift(mean: np.ndarray, mean_square: np.ndarray) -> float:
    """Mean over units of their activation shift (``unit_activation_shift``)."""
    if mean.size == 0:
        return float("nan")
    return float(unit_activation_shift(mean, mean_square).mean())


def redundancy(covariance: np.ndarray, keep: np.ndarray) -> float:
    """Mean |Pearson correlation| over pairs of the kept units; NaN with fewer than two."""
    index = np.flatnonzero(keep)
    if index.size < 2:
        return float("nan")
    cov = covariance[np.ix_(index, index)]
    std = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(std, std)
    upper = np.triu_indices(index.size, k=1)
    values = np.clip(np.abs(corr[upper]), 0.0, 1.0)
    return float(np.mean(values))


def rms(sum_of_squares: float, count: float) -> float:
    """Root mean square from a sum of squares and a count; NaN with nothing counted."""
    return math.sqrt(sum_of_squares / count) if count > 0 else float("nan")


def status(variability: float, collapsed: float = 1e-3, collapsing: float = 0.05) -> str:
    """'collapsed' at or below the collapse level, 'collapsing' at or below the collapsing level,
    else 'healthy'; 'no data' for a site that saw nothing (NaN)."""
    if math.isnan(variability):
        return "no data"
    if variability <= collapsed:
        return "collapsed"
    if variability <= collapsing:
        return "collapsing"
    return "healthy"
