"""The rounding bound of V on the compiled path (docs/figures.md, "Exactness"), for the tests.

The kernel (variability/probes/kernels.py) sums, per unit j, ``d = a - c_j`` and ``d^2`` in the
data's precision over blocks of B = kernels.BLOCK samples, and adds each block to float64.
Derivation, for float32 data (unit roundoff u = 2^-24, gamma_k = k u / (1 - k u)):

- A block's sum of B terms ``fl(fl(a - c)^2)``, in any order, is within gamma_{B+2} of
  ``sum d^2`` (gamma_{B-1} for the sum, gamma_3 for the two roundings of each term); its sum of
  ``fl(a - c)`` is within gamma_B of ``sum |d|``. The float64 additions add gamma64 of the
  number of blocks, folded into g below: so ``|dS2| <= g S2`` and ``|dS1| <= g sum |d|``.
- ``n var = S2 - S1^2 / n`` then errs by at most ``g S2 + 2 g |S1| sum|d| / n <= 3 g S2``
  (Cauchy-Schwarz: ``(sum |d|)^2 <= n S2``). Over units: ``|d sum_j var_j| <= 3 g K sum_j var_j``
  with the **amplification** ``K = sum_j E_j[d^2] / sum_j var_j = 1 + sum_j (mean_j - c_j)^2 /
  sum_j var_j >= 1``.
- ``E[a^2] = var + mean^2``, with ``mean = c + S1 / n`` off by at most ``g sqrt(E[d^2])``: the
  denominator ``D = sum_j E_j[a^2]`` errs by at most ``g D (3 K V^2 + 2 V sqrt(K))``.
- V^2 = N / D, so ``|dV| / V <= (g / 2) (3 K (1 + V^2) + 2 V sqrt(K))``, at most ``4 g K``.

K is what the reference value c decides: with c the first sample it was 11.9 at the site of the
hypothesis example that failed (tests/probes/test_merging.py); with c the first batch's mean it
is 1 up to the rounding of c. Everything here is read from the probe's own statistics.
"""

from __future__ import annotations

import math

import numpy as np

from variability.probes import kernels
from variability.probes.statistics import SUM, SUMSQ, SiteStatistics

U32 = 2.0**-24
U64 = 2.0**-53


def gamma(k: int, u: float = U32) -> float:
    return k * u / (1.0 - k * u)


def amplification(stats: SiteStatistics) -> float:
    """K = sum_j E_j[(a - c_j)^2] / sum_j var_j, from a site's float64 sums."""
    stats.flush()
    n = stats.count.numpy()
    s1, s2 = stats.moments[SUM].numpy(), stats.moments[SUMSQ].numpy()
    seen = n > 0
    mean_d = s1[seen] / n[seen]
    mean_d2 = s2[seen] / n[seen]
    return float(mean_d2.sum() / (mean_d2 - mean_d * mean_d).sum())


def kernel_v_bound(stats: SiteStatistics, v: float) -> float:
    """The relative error bound of V for float32 data reduced by the kernel (derived above)."""
    rows = int(stats.count.max().item())
    g = gamma(kernels.BLOCK + 2) + gamma(math.ceil(rows / kernels.BLOCK) + 2, U64)
    k = amplification(stats)
    return (g / 2) * (3 * k * (1 + v * v) + 2 * v * math.sqrt(k))


def float64_v(a: np.ndarray) -> float:
    """V in float64, two passes, of the values a probe saw (samples x units)."""
    a = np.asarray(a, dtype=np.float64)
    variance = ((a - a.mean(0)) ** 2).mean(0)
    return float(np.sqrt(variance.sum() / (a * a).mean(0).sum()))
