"""The formulas of DEFINITIONS.md: the one implementation of each figure the toolkit reports.

They take per-unit statistics (float64 NumPy arrays) of many sites at once, laid end to end: site
i owns units ``starts[i]:starts[i + 1]``, and ``per_site`` sums a per-unit array site by site. Why:
a Monitor recording every step needs every site's figures at every step, and NumPy costs
microseconds per call whatever the size, so each formula runs once over the units of all sites
(results.py assembles them). Units never seen (count 0) are left out by the callers.

tests/probes/reference_figures.py states every formula again, one site at a time in plain scalar
form; the tests check these against it, against values worked out by hand, and at each threshold
exactly (V at a collapse level, a unit's std at ``constant * RMS``, unit AR 0 and 1).
"""

from __future__ import annotations

import numpy as np


def per_site(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of a per-unit array (or of each row of a stack of them) over each site's units."""
    return np.add.reduceat(values, starts, axis=-1)


def unit_moments(
    count: np.ndarray, sum_d: np.ndarray, sumsq_d: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per unit, from the sums of ``d = a - c`` and ``d^2`` around its reference value c:
    ``(seen, mean, variance, mean_square)``, variance the population variance and mean square
    ``E[a^2] = variance + mean^2``; 0 for a unit never seen."""
    seen = count > 0
    n = np.where(seen, count, 1.0)
    mean_d = np.where(seen, sum_d / n, 0.0)
    variance = np.where(seen, np.maximum(sumsq_d / n - mean_d * mean_d, 0.0), 0.0)
    mean = np.where(seen, reference + mean_d, 0.0)
    return seen, mean, variance, variance + mean * mean


def variability(variance_sum: np.ndarray, mean_square_sum: np.ndarray) -> np.ndarray:
    """V = sqrt(sum_j var_j / sum_j E_j[a^2]) per site; 0 where the denominator is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.maximum(variance_sum, 0.0) / mean_square_sum
    return np.where(mean_square_sum > 0, np.sqrt(np.where(mean_square_sum > 0, ratio, 0.0)), 0.0)


def rms(sum_of_squares: np.ndarray | float, count: np.ndarray | float) -> np.ndarray:
    """Root mean square from a sum of squares and a count; NaN with nothing counted. A site's
    RMS is ``rms(sum_j E_j[a^2], units seen)``."""
    count = np.asarray(count, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.sqrt(np.asarray(sum_of_squares) / count), np.nan)


def constant_units(std: np.ndarray, site_rms: np.ndarray, tolerance: float) -> np.ndarray:
    """Mask of units whose std is at most ``tolerance`` times their site's RMS (``site_rms``,
    one value per unit): an all-zero site, RMS 0, has every unit constant."""
    return std <= tolerance * site_rms


def unit_activation_ratio(active: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per unit, the fraction of its samples where it is active; NaN for a unit never seen."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, active / np.where(count > 0, count, 1.0), np.nan)


def activation_ratio(active_sum: np.ndarray, count_sum: np.ndarray) -> np.ndarray:
    """Per site, the fraction of (unit, sample) pairs where the unit is active; NaN without any."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count_sum > 0, active_sum / np.where(count_sum > 0, count_sum, 1.0), np.nan)


def dead_units(unit_ratio: np.ndarray) -> np.ndarray:
    """Mask of units never active over the whole probe set (unit activation ratio exactly 0)."""
    return unit_ratio == 0.0


def linear_units(unit_ratio: np.ndarray) -> np.ndarray:
    """Mask of units always active over the whole probe set: never gated, they act linearly."""
    return unit_ratio == 1.0


def unit_activation_shift(mean: np.ndarray, mean_square: np.ndarray) -> np.ndarray:
    """Per unit, ``|E[z_j]| / sqrt(E[z_j^2])``; 0 for a unit with ``E[z_j^2] = 0``."""
    ratio = np.zeros_like(mean)
    np.divide(np.abs(mean), np.sqrt(mean_square), out=ratio, where=mean_square > 0)
    return ratio


def redundancy(covariance: np.ndarray, keep: np.ndarray) -> float:
    """One site's mean |Pearson correlation| over pairs of the kept units (``keep`` a mask over
    the covariance's rows); NaN with fewer than two."""
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
