"""One compiled pass over a batch on the CPU: every per-unit sum a probe site needs at once.

Why: reduced with PyTorch operations, a batch costs a site several passes over its activation
(``a - c``, two for its mean and variance, the active flags and their sum, two more for ``z``) and
a dozen calls of a few microseconds each; at width 256 that is as long as the layer itself.
Compiled with numba, one loop reads ``a`` (and ``z``) once and keeps its running sums in the cache:
per unit, the sums of ``d = a - c`` and ``d^2`` (``c`` the site's reference value, see
statistics.py), the count of samples where ``a != 0`` (the active count of ReLU, Abs and Han, whose
outputs are >= 0) or of values of ``z`` inside the activation's active intervals
(intervals.py), and the sums of ``z`` and ``z^2``.

Precision: the running sums are kept in the data's precision over blocks of ``BLOCK`` samples and
added to float64 after each block, so no float32 sum runs over more than ``BLOCK`` terms (PyTorch's
reductions sum pairwise; both keep errors near the float32 rounding of a single value).

The kernels serve CPU tensors of float32 or float64 whose units are on the last axis, or on axis 1
of a contiguous tensor (convolutions). Everything else, every device but the CPU, and any machine
without numba, is reduced by PyTorch operations (statistics.py), with the same figures. Setting
the environment variable ``VARIABILITY_KERNELS=torch`` before import turns the kernels off.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from variability.probes.intervals import Interval, exact_bounds
from variability.probes.layout import Layout

ENABLED = os.environ.get("VARIABILITY_KERNELS", "").lower() != "torch"
"""Whether batches that fit are reduced by the compiled kernels (if numba imports)."""

BLOCK = 16
"""Samples summed in the data's precision before the sums are added to float64. Measured on
ReLU sites of 64 and 1,024 rows (300 seeds each), with the reference value c then the first
sample, V's largest relative error against float64 was 1.1e-7 and 3.1e-7 with 16 (PyTorch's
path: 1.2e-7 and 2.2e-6), 9.0e-7 and 1.3e-6 with 64; 16 costs about 10 us more per 1024 x 256
batch than 64, and 8 another 30 (measured by benchmarks/bench_kernel_precision.py and
bench_probe_parts.py; figures in docs/benchmarks.md). With c the first batch's mean (now), 2.0e-8
and 1.2e-8; the bound, ``4 gamma_{BLOCK+2} K``, is in docs/figures.md ("Exactness")."""

# Rows of the kernel's output, the same order as the moment rows in statistics.py.
SUM, SUMSQ, NONZERO, Z_SUM, Z_SUMSQ = range(5)
ROWS = 5

_KERNEL_DTYPES = (torch.float32, torch.float64)


def fits(a: Tensor, layout: Layout, z: Tensor | None = None) -> bool:
    """Whether the kernel can read ``a`` (and ``z``) in place: CPU, float32/64, contiguous units."""
    if not ENABLED or a.device.type != "cpu" or a.dtype not in _KERNEL_DTYPES:
        return False
    if compiled() is None:
        return False
    if not _readable_in_place(a, layout):
        return False
    return z is None or (
        z.dtype == a.dtype
        and z.device == a.device
        and z.shape == a.shape
        and _readable_in_place(z, layout)
    )


def _readable_in_place(x: Tensor, layout: Layout) -> bool:
    if layout.unit_axis == layout.ndim - 1:
        return x.stride(-1) == 1 and x.is_contiguous()
    return layout.unit_axis == 1 and x.is_contiguous()


def as_blocks(x: Tensor, layout: Layout) -> np.ndarray:
    """``x`` as a (before, units, after) array sharing its memory (after = 1: units last)."""
    units = layout.units
    if layout.unit_axis == layout.ndim - 1:
        return x.detach().numpy().reshape(-1, units, 1)
    return x.detach().numpy().reshape(x.shape[0], units, -1)


MAX_INTERVALS = 3
"""Active intervals the kernel tests (hardswish has three); more are counted by PyTorch."""


@functools.cache
def _interval_rows(bounds: bytes, dtype: type) -> np.ndarray:
    """``MAX_INTERVALS`` rows of (low, high) in the data's precision (exact: the bounds are
    representable in it), empty rows (low > high) after the given ones."""
    given = np.frombuffer(bounds, dtype=np.float64).reshape(-1, 2)
    rows: np.ndarray = np.empty((MAX_INTERVALS, 2), dtype=dtype)
    rows[:, 0], rows[:, 1] = np.inf, -np.inf
    rows[: len(given)] = given
    return rows


_NONZERO = (
    Interval(-np.inf, 0.0, high_closed=False),
    Interval(0.0, np.inf, low_closed=False),
)


def _rows_for(bounds: np.ndarray | None, dtype: torch.dtype) -> tuple[np.ndarray, bool]:
    """The kernel's interval rows, and whether they test ``z`` (else they test ``a != 0``)."""
    test_z = bounds is not None
    if bounds is None:
        bounds = exact_bounds(_NONZERO, dtype)
    kind = np.float32 if dtype == torch.float32 else np.float64
    return _interval_rows(bounds.tobytes(), kind), test_z


def fits_intervals(bounds: np.ndarray) -> bool:
    return len(bounds) <= MAX_INTERVALS


def reduce_batch(
    a: Tensor,
    z: Tensor | None,
    shift: Tensor,
    layout: Layout,
    out: np.ndarray,
    bounds: np.ndarray | None = None,
) -> bool:
    """Fill ``out`` (``ROWS`` x units, float64) with the batch's sums; False if any was NaN/Inf.

    Rows Z_SUM and Z_SUMSQ are left as they were when ``z`` is None. Row NONZERO counts
    ``a != 0``, or with ``bounds`` (``(k, 2)`` closed intervals, intervals.exact_bounds) the
    values of ``z`` inside one of them: the active count of any activation given by intervals.
    """
    blocks = as_blocks(a, layout)
    shift_values = shift.detach().numpy()
    kernels = compiled()
    assert kernels is not None  # callers ask fits() first, which is False without numba
    reduce_output, reduce_both = kernels
    if z is None:
        return bool(reduce_output(blocks, shift_values, out, BLOCK))
    rows, test_z = _rows_for(bounds, a.dtype)
    return bool(reduce_both(blocks, as_blocks(z, layout), shift_values, out, BLOCK, rows, test_z))


# Reassociation lets the loops use vector registers; NaN and Inf keep their meaning (the kernels
# must see them to report them), so no 'nnan'/'ninf'.
_FAST_MATH = {"reassoc", "contract", "nsz", "arcp"}


@functools.cache
def compiled() -> tuple[Callable[..., bool], Callable[..., bool]] | None:
    """The compiled kernels, or None without numba. numba is imported on first use (it costs
    0.2 s, which commands that probe nothing on the CPU need not pay); the machine code is cached
    on disk beside this file after the first compilation."""
    try:
        numba = importlib.import_module("numba")
    except ImportError:  # numba is a dependency; a platform it does not support uses PyTorch
        return None
    jit = numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=_FAST_MATH)
    return jit(_reduce_output), jit(_reduce_both)


# Two kernels, one per kind of site, with the same loops: an output site has no z, and not
# reading one nearly halves its pass (bench_probe_parts.py: 45 against 77 us per 1024 x 256).
def _reduce_output(  # pragma: no cover - compiled; tested through the probe
    a: np.ndarray, c: np.ndarray, out: np.ndarray, block: int
) -> bool:
    before, units, after = a.shape
    s = np.zeros(units, a.dtype)
    ss = np.zeros(units, a.dtype)
    nz = np.zeros(units, a.dtype)
    for r in range(3):
        for j in range(units):
            out[r, j] = 0.0
    if after == 1:
        for start in range(0, before, block):
            stop = min(before, start + block)
            for j in range(units):
                s[j] = 0.0
                ss[j] = 0.0
                nz[j] = 0.0
            for i in range(start, stop):
                for j in range(units):
                    x = a[i, j, 0]
                    d = x - c[j]
                    s[j] += d
                    ss[j] += d * d
                    nz[j] += x != 0
            for j in range(units):
                out[0, j] += s[j]
                out[1, j] += ss[j]
                out[2, j] += nz[j]
    else:
        for i in range(before):
            for j in range(units):
                cj = c[j]
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                for k in range(after):
                    x = a[i, j, k]
                    d = x - cj
                    s0 += d
                    s1 += d * d
                    s2 += 1.0 if x != 0 else 0.0
                out[0, j] += s0
                out[1, j] += s1
                out[2, j] += s2
    total = 0.0
    for r in range(3):
        for j in range(units):
            total += out[r, j]
    return np.isfinite(total)


def _reduce_both(  # pragma: no cover - compiled; tested through the probe
    a: np.ndarray,
    z: np.ndarray,
    c: np.ndarray,
    out: np.ndarray,
    block: int,
    bounds: np.ndarray,
    test_z: bool,
) -> bool:
    # the active count tests w = z (or a, for a != 0) against three closed intervals, unrolled
    # and branch-free so that the loop stays vectorised
    before, units, after = a.shape
    l0, h0 = bounds[0, 0], bounds[0, 1]
    l1, h1 = bounds[1, 0], bounds[1, 1]
    l2, h2 = bounds[2, 0], bounds[2, 1]
    s = np.zeros(units, a.dtype)
    ss = np.zeros(units, a.dtype)
    nz = np.zeros(units, a.dtype)
    zs = np.zeros(units, a.dtype)
    zz = np.zeros(units, a.dtype)
    for r in range(5):
        for j in range(units):
            out[r, j] = 0.0
    if after == 1:
        for start in range(0, before, block):
            stop = min(before, start + block)
            for j in range(units):
                s[j] = 0.0
                ss[j] = 0.0
                nz[j] = 0.0
                zs[j] = 0.0
                zz[j] = 0.0
            for i in range(start, stop):
                for j in range(units):
                    x = a[i, j, 0]
                    d = x - c[j]
                    s[j] += d
                    ss[j] += d * d
                    y = z[i, j, 0]
                    w = y if test_z else x
                    nz[j] += (
                        ((w >= l0) & (w <= h0)) | ((w >= l1) & (w <= h1)) | ((w >= l2) & (w <= h2))
                    )
                    zs[j] += y
                    zz[j] += y * y
            for j in range(units):
                out[0, j] += s[j]
                out[1, j] += ss[j]
                out[2, j] += nz[j]
                out[3, j] += zs[j]
                out[4, j] += zz[j]
    else:
        for i in range(before):
            for j in range(units):
                cj = c[j]
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                s4 = 0.0
                for k in range(after):
                    x = a[i, j, k]
                    d = x - cj
                    s0 += d
                    s1 += d * d
                    y = z[i, j, k]
                    w = y if test_z else x
                    hit = (
                        ((w >= l0) & (w <= h0)) | ((w >= l1) & (w <= h1)) | ((w >= l2) & (w <= h2))
                    )
                    s2 += 1.0 if hit else 0.0
                    s3 += y
                    s4 += y * y
                out[0, j] += s0
                out[1, j] += s1
                out[2, j] += s2
                out[3, j] += s3
                out[4, j] += s4
    total = 0.0
    for r in range(5):
        for j in range(units):
            total += out[r, j]
    return np.isfinite(total)
