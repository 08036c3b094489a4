"""Per-unit sufficient statistics of one probe site, reduced from each batch at once.

Why this shape:
- Every figure of DEFINITIONS.md is a function of per-unit counts, sums and sums of squares (and,
  for redundancy, a cross-product matrix over a fixed subset of units). Sums add, so chunks, batches
  and ranks merge exactly; memory is O(units), never O(samples).
- Collapse is a question about tiny variances (V <= 1e-3 means var/E[a^2] <= 1e-6), where raw
  float32 sums of squares cancel catastrophically. So output statistics are kept *shifted*: sums
  of ``a - c`` and ``(a - c)^2``, ``c`` a per-unit reference value: the mean of the first batch.
  A unit that never changes then has exactly zero variance, and the float32 batch reductions keep
  their precision relative to the variance, not to the mean. Totals are float64.
- The hooks run on every batch, and there each PyTorch call costs microseconds and each pass over
  an activation tens of them. On the CPU a batch that the compiled kernel can read in place is
  reduced by it in one pass (kernels.py); the sums it returns are added to the float64 totals in
  one operation. Otherwise (GPU, other layouts and precisions, no numba), a batch is reduced with
  PyTorch operations in few passes: ``a - c`` is written once to
  reused scratch memory (``Workspace``); PyTorch's batch-norm statistics kernel gives per-unit
  means and variances of ``a - c`` and of ``z`` (two passes each, writing nothing large); the active
  count is one more. The per-unit results are stacked into one small buffer (``BatchRows``),
  checked for NaN/Inf with a single scalar, and added to the float64 totals in one operation.
  Cross products accumulate block-triangularly (``Gram``) in the data's precision and are folded
  into float64 every ``GRAM_BATCHES`` batches. Only a batch that really holds NaN or Inf is
  reduced again with masks, so those values are counted and left out of every other figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from variability.probes import kernels
from variability.probes.activations import Activation
from variability.probes.batch_rows import BatchRows
from variability.probes.errors import ProbeError
from variability.probes.gram import Gram
from variability.probes.intervals import exact_bounds
from variability.probes.layout import Layout
from variability.probes.thresholds import Thresholds
from variability.probes.workspace import Workspace, slabs_like

# Rows of the per-unit moment matrix. A batch's rows hold per-unit *means* (of a - c, (a - c)^2,
# z, z^2), except ACTIVE, a count; each batch adds them to the float64 totals weighted by its number
# of samples. The order makes every kind of batch write one contiguous block of rows.
SUM, SUMSQ, ACTIVE, Z_SUM, Z_SUMSQ = range(5)

_FIELDS = ("shift", "moments", "count", "nonfinite", "grad_sumsq", "grad_count")
_FIELDS_PRE = ("z_count",)
_FIELDS_CROSS = ("cross_count", "cross_sum", "cross_prod")

GRAM_BATCHES = 16
"""Batches whose cross products accumulate in the data's precision before a float64 fold."""

# Scratch slabs (elementwise intermediates, each shaped like the site's tensor).
_D, _FLAGS = range(2)

_BATCH_NORM_STATS = getattr(torch, "batch_norm_update_stats", None)


def mean_and_variance(x: Tensor, layout: Layout) -> tuple[Tensor, Tensor]:
    """Per-unit mean and population variance over the sample axes (fresh tensors).

    PyTorch's batch-norm statistics kernel computes both in two passes over ``x`` (the variance
    around the mean), writing nothing the size of ``x``; ``torch.var_mean`` (Welford) is the
    fallback on devices without it.
    """
    if _BATCH_NORM_STATS is not None and x.device.type in ("cpu", "cuda"):
        return _BATCH_NORM_STATS(layout.channels_second(x), None, None, 0.0)
    variance, mean = torch.var_mean(x, layout.sample_axes, correction=0)
    return mean, variance


def mean_and_square(x: Tensor, layout: Layout) -> list[Tensor]:
    """Per-unit means of ``x`` and of ``x^2``, the latter as variance + mean^2 (no cancellation)."""
    mean, variance = mean_and_variance(x, layout)
    return [mean, variance.addcmul_(mean, mean)]


class SiteStatistics:
    """Sufficient statistics of one site (float64 tensors on the model's device).

    ``moments`` rows, per unit: ``sum`` of ``a - shift``, ``sumsq`` of ``(a - shift)^2``, and for
    sites with a known activation, ``active`` (samples where the unit was active), ``z_sumsq`` and
    ``z_sum`` of the pre-activation. ``count`` / ``z_count``: finite samples per unit. Cross
    products (redundancy) over the units ``cross_index``: ``cross_count`` rows, ``cross_sum`` and
    ``cross_prod`` of ``a - shift``. ``nonfinite`` counts NaN/Inf values seen in z and a. ``grad_*``
    hold the squared gradient of the loss at the site's output, when gradients are recorded.
    """

    def __init__(
        self,
        units: int,
        *,
        preactivation: bool,
        cross_index: Tensor | None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.units = units
        self.has_preactivation = preactivation
        self.cross_index = None if cross_index is None else cross_index.to(device)
        self.cross_is_all = cross_index is not None and cross_index.numel() == units
        self.initialised = False
        rows = 5 if preactivation else 2
        zeros = _zeros(device)
        self.shift = zeros(units)
        self.moments = zeros(rows, units)
        self.count = zeros(units)
        self.nonfinite = zeros()
        self.grad_sumsq = zeros()
        self.grad_count = zeros()
        if preactivation:
            self.z_count = zeros(units)
        if self.cross_index is not None:
            k = self.cross_index.numel()
            self.cross_count = zeros()
            self.cross_sum = zeros(k)
            self.cross_prod = zeros(k, k)
        # Rows counted on the fast path, folded into the count vectors when read.
        self._rows = 0
        self._z_rows = 0
        self._cross_rows = 0
        self._grad_values = 0
        # Batches whose cross products wait in the Gram buffer, and whether only the lower
        # triangle of cross_prod holds the totals (both resolved by flush).
        self._gram_batches = 0
        self._cross_lower = False
        self._shift_cast: Tensor | None = None
        self._shift_buffer: Tensor | None = None
        self._shift_view: Tensor | None = None
        self._shift_layout: Layout | None = None
        self._gram = Gram()
        self._batch = BatchRows(rows, units, ACTIVE, device)
        self._totals: dict[tuple[int, int], Tensor] = {}
        self._totals_of: Tensor | None = None
        # The compiled kernel's per-batch sums (float64), and views of them by rows.
        self._sums = np.zeros((kernels.ROWS, units))
        self._sums_rows = torch.from_numpy(self._sums)
        self._sums_blocks: dict[tuple[int, int], Tensor] = {}
        self._zero_shift: Tensor | None = None

    def _totals_block(self, first: int, last: int) -> Tensor:
        """Rows ``first:last`` of the float64 totals (cached while ``moments`` is the same)."""
        if self._totals_of is not self.moments:
            self._totals = {}
            self._totals_of = self.moments
        block = self._totals.get((first, last))
        if block is None:
            block = self._totals[first, last] = self.moments[first:last]
        return block

    # --- named views of the moment rows --------------------------------------------------------

    @property
    def sum(self) -> Tensor:
        return self.moments[SUM]

    @property
    def sumsq(self) -> Tensor:
        return self.moments[SUMSQ]

    @property
    def active(self) -> Tensor:
        return self.moments[ACTIVE]

    @property
    def z_sum(self) -> Tensor:
        return self.moments[Z_SUM]

    @property
    def z_sumsq(self) -> Tensor:
        return self.moments[Z_SUMSQ]

    # --- structure -----------------------------------------------------------------------------

    def field_names(self) -> tuple[str, ...]:
        names: tuple[str, ...] = _FIELDS
        if self.has_preactivation:
            names += _FIELDS_PRE
        if self.cross_index is not None:
            names += _FIELDS_CROSS
        return names

    def flush(self) -> None:
        """Fold the fast-path row counts into the count tensors, and mirror the cross products'
        lower triangle into the upper one."""
        if self._rows:
            self.count.add_(self._rows)
            self._rows = 0
        if self._z_rows:
            self.z_count.add_(self._z_rows)
            self._z_rows = 0
        if self._cross_rows:
            self.cross_count.add_(self._cross_rows)
            self._cross_rows = 0
        if self._grad_values:
            self.grad_count.add_(self._grad_values)
            self._grad_values = 0
        self._fold_gram()
        if self._cross_lower:
            lower = self.cross_prod.tril()
            self.cross_prod = lower + lower.tril(-1).T
            self._cross_lower = False

    def _fold_gram(self) -> None:
        """Add the cross products waiting in the Gram buffer to the float64 totals."""
        if self._gram_batches:
            self._gram.fold_into(self.cross_prod)
            self._gram_batches = 0
            self._cross_lower = True

    def clear(self) -> None:
        """Forget every batch, as a new object would, but keep the memory (a Monitor starts over
        at every recorded step, and allocating a site's tensors costs more than zeroing them)."""
        for name in self.field_names():
            getattr(self, name).zero_()
        self._rows = self._z_rows = self._cross_rows = self._grad_values = 0
        self._gram_batches = 0
        self._cross_lower = False
        if self._gram.buffer is not None:
            self._gram.buffer.zero_()
        self.initialised = False
        self._shift_cast = None
        self._shift_view = None
        self._shift_layout = None

    def tensors(self) -> Iterator[tuple[str, Tensor]]:
        self.flush()
        for name in self.field_names():
            yield name, getattr(self, name)

    def copy(self) -> SiteStatistics:
        other = SiteStatistics(
            self.units,
            preactivation=self.has_preactivation,
            cross_index=self.cross_index,
            device=self.count.device,
        )
        for name, value in self.tensors():
            setattr(other, name, value.clone())
        other.initialised = self.initialised
        return other

    def to(self, device: torch.device | str) -> SiteStatistics:
        other = self.copy()
        for name, value in other.tensors():
            setattr(other, name, value.to(device))
        if other.cross_index is not None:
            other.cross_index = other.cross_index.to(device)
        other._batch.to(device)
        return other

    # --- accumulation --------------------------------------------------------------------------

    def check_units(self, layout: Layout) -> None:
        if layout.units != self.units:
            raise ProbeError(
                f"a probe site had {self.units} units and now has {layout.units}; "
                "a site must keep its number of units across batches"
            )

    def _init_shift(self, a: Tensor, layout: Layout, check: bool = True) -> None:
        """The reference values: per unit, the mean of this (first) batch, rounded to the data's
        precision (of its finite values, if ``check`` finds a NaN or Inf; the compiled path
        checks after its pass instead).

        Taken as ``first + mean(a - first)``, ``first`` the unit's first sample, so that a unit
        that never changes gets exactly its value (and a variance of exactly 0). Why the mean and
        not the first sample: the variance is taken from sums of ``d = a - c`` and ``d^2``, whose
        rounding is amplified by ``E[d^2] / var = 1 + (mean - c)^2 / var`` when the variance is
        taken; a first sample far out in its unit's tail made that 20 (docs/figures.md,
        "Exactness").
        """
        first = layout.first_sample(a)
        if check and not math.isfinite(float(first.sum())):  # NaN/Inf, or a sum past the range
            matrix = layout.as_matrix(a)
            finite = torch.isfinite(matrix)
            row = torch.argmax(finite.to(torch.uint8), dim=0)
            candidate = matrix.gather(0, row.unsqueeze(0)).squeeze(0)
            first = torch.where(finite.any(0), candidate, torch.zeros_like(candidate))
        first = _batch_mean_near(a.detach(), layout, first.detach(), check).to(a.dtype)
        # Values in the data's precision (no rounding check needed), copied into memory kept
        # across clear().
        buffer = self._shift_buffer
        if buffer is None or buffer.dtype != first.dtype or buffer.device != first.device:
            buffer = self._shift_buffer = torch.empty_like(
                first, memory_format=torch.contiguous_format
            )
        buffer.copy_(first)
        if self.shift.device == first.device:
            self.shift.copy_(first)
        else:
            self.shift = first.to(self.shift.device, torch.float64)
        self._shift_cast = buffer
        self._shift_view = None
        self.initialised = True

    def _shift_for(self, a: Tensor, layout: Layout, check: bool = True) -> Tensor:
        """The reference values in ``a``'s precision, shaped to broadcast against ``a``."""
        view = self._shift_view
        if (
            view is not None
            and self._shift_layout is layout
            and view.dtype == a.dtype
            and view.device == a.device
        ):
            return view
        if not self.initialised:
            self._init_shift(a, layout, check)
        shift = self._shift_cast
        if shift is None or shift.dtype != a.dtype or shift.device != a.device:
            # The reference value was rounded to the data's precision
            # (after a merge it may not be: then the stored float64 value is rounded once here,
            # and the rounded value is what the sums are taken around).
            shift = self.shift.to(device=a.device, dtype=a.dtype)
            exact = shift.to(self.shift.device, torch.float64)
            if not torch.equal(exact, self.shift):
                rebased = self.rebased(exact)
                for name, value in rebased.tensors():
                    setattr(self, name, value)
            self._shift_cast = shift
        self._shift_view = shift.view(layout.broadcast_shape)
        self._shift_layout = layout
        return self._shift_view

    def _shifted(self, a: Tensor, layout: Layout) -> Tensor:
        return a - self._shift_for(a, layout)

    def add(
        self,
        a: Tensor,
        layout: Layout,
        z: Tensor | None = None,
        activation: Activation | None = None,
        tau: float = Thresholds.tau,
        active_from_output: bool = False,
        workspace: Workspace | None = None,
    ) -> None:
        """Fold one batch in: the output ``a``, and ``z`` when the site has an activation.

        ``active_from_output`` counts active units from ``a`` with the activation's shortcut
        (for an in-place site whose ``z`` was folded in by ``add_preactivation`` beforehand).
        ``workspace`` lends scratch memory for the elementwise intermediates.
        """
        if layout.units != self.units:
            self.check_units(layout)
        n = a.numel() // self.units
        if n == 0:
            return
        a = _readable(a)
        if z is not None:
            z = _readable(z)
            if z.dtype != a.dtype:
                z = z.to(a.dtype)
        if kernels.fits(a, layout, z):
            self._add_compiled(a, layout, z, activation, tau, active_from_output, workspace)
            return
        batch = self._batch
        batch.prepare(a)
        counts = z is not None or active_from_output
        slabs = slabs_like(workspace, a, 2 if counts else 1)
        d = torch.sub(a, self._shift_for(a, layout), out=slabs[_D])
        values = mean_and_square(d, layout)
        if counts:
            assert activation is not None
            flags = slabs[_FLAGS]
            if activation.count_from_output is not None:
                _flags_from_output(activation, a, flags)
            else:
                assert z is not None
                flags.copy_(activation.active(z, tau))
            values.append(torch.sum(flags, layout.sample_axes))
        if z is not None:
            values += mean_and_square(z, layout)
        batch.write(SUM, values)
        last = SUM + len(values)
        if not batch.finite(SUM, last):
            self._add_masked(a, layout, z, activation, tau, active_from_output, slabs)
            return
        if self.cross_index is not None:
            sums = batch.rows[SUM].to(torch.float64).mul_(n)
            self._add_cross(a, layout, n, sums, slabs[_D])
        batch.add_to(self._totals_block(SUM, last), SUM, last, n)
        self._rows += n
        if z is not None:
            self._z_rows += n

    def _add_compiled(
        self,
        a: Tensor,
        layout: Layout,
        z: Tensor | None,
        activation: Activation | None,
        tau: float,
        active_from_output: bool,
        workspace: Workspace | None,
    ) -> None:
        """``add`` by the compiled kernel (kernels.py): one pass over ``a`` and ``z``."""
        n = a.numel() // self.units
        fresh = not self.initialised
        self._shift_for(a, layout, check=False)  # sets the reference value on the first batch
        shift_cast = self._shift_cast
        assert shift_cast is not None  # set by _shift_for
        counts = z is not None or active_from_output
        bounds = None
        if (
            z is not None
            and activation is not None
            and activation.count_from_output is not torch.sign
            and activation.intervals is not None
        ):  # the kernel counts the values of z in the active intervals
            bounds = exact_bounds(activation.intervals(tau), z.dtype)
            if not kernels.fits_intervals(bounds):
                bounds = None
        if not kernels.reduce_batch(a, z, shift_cast, layout, self._sums, bounds):
            if fresh and not bool(torch.isfinite(shift_cast).all()):
                self._init_shift(a, layout, check=True)  # the first sample held NaN or Inf
            slabs = slabs_like(workspace, a, 2)
            self._add_masked(a, layout, z, activation, tau, active_from_output, slabs)
            return
        sums = self._sums_rows
        if (
            counts
            and activation is not None
            and activation.count_from_output is not torch.sign
            and bounds is None
        ):
            # The kernel counts a != 0 (the sign of a >= 0): other activations count by their rule.
            flags = slabs_like(workspace, a, 1)[0]
            if activation.count_from_output is not None:
                _flags_from_output(activation, a, flags)
            else:
                assert z is not None  # without a shortcut from the output, the count needs z
                flags.copy_(activation.active(z, tau))
            sums[ACTIVE].copy_(torch.sum(flags, layout.sample_axes))
        last = ACTIVE + 1 if counts else SUMSQ + 1
        if z is not None:
            last = Z_SUMSQ + 1
        if self.cross_index is not None:
            self._add_cross(a, layout, n, sums[SUM], slabs_like(workspace, a, 1)[0])
        self._totals_block(SUM, last).add_(self._sums_block(SUM, last))
        self._rows += n
        if z is not None:
            self._z_rows += n

    def _sums_block(self, first: int, last: int) -> Tensor:
        """Rows ``first:last`` of the kernel's sums (a cached view: slicing costs a call)."""
        block = self._sums_blocks.get((first, last))
        if block is None:
            block = self._sums_blocks[first, last] = self._sums_rows[first:last]
        return block

    def _add_cross(self, a: Tensor, layout: Layout, n: int, sums: Tensor, slab: Tensor) -> None:
        """Cross products of a finite batch; ``sums`` are its per-unit sums of ``a - shift``
        (float64).

        Why centred: the totals are sums of ``(a - c)(a - c)^T`` around the reference value c,
        and a unit whose c lies far from its mean (c is the first batch's mean, and a first
        batch may be one sample) makes those products large against its variance, so their
        float32 rounding is amplified by ``(mean - c)^2 / variance`` when the covariance is
        taken (2e-4 in a correlation of two such units at 4,096 samples). So each batch's
        products are taken around its own mean ``b`` (rounded to the data's precision), where
        they are of the size of the variance, and re-expressed around c in float64:
        ``sum (a-c)(a-c)^T = sum (a-b)(a-b)^T + r d^T + d r^T + n d d^T`` with ``d = b - c`` and
        ``r = sum (a - b)``. The centred products wait in the Gram buffer (GRAM_BATCHES).
        """
        index = None if self.cross_is_all else self.cross_index
        shift = self.shift if index is None else self.shift[index]
        sums = sums.to(shift.device)
        if index is not None:
            sums = sums[index]
        center = (shift + sums / n).to(a.dtype)
        if index is None:
            matrix = layout.as_matrix(torch.sub(a, center.view(layout.broadcast_shape), out=slab))
        else:
            matrix = layout.as_matrix(a)[:, index.to(a.device)] - center
        delta = center.to(torch.float64) - shift
        residual = matrix.sum(0, dtype=torch.float64).to(shift.device)
        if not self._gram.fits(matrix):
            self._fold_gram()
        self._gram.add(matrix)
        correction = torch.outer(residual, delta)
        correction += correction.T.clone()
        correction.add_(torch.outer(delta, delta), alpha=n)
        self.cross_prod.add_(correction)
        self.cross_sum.add_(sums)
        self._cross_rows += n
        self._gram_batches += 1
        if self._gram_batches == GRAM_BATCHES:
            self._fold_gram()

    def _add_masked(
        self,
        a: Tensor,
        layout: Layout,
        z: Tensor | None,
        activation: Activation | None,
        tau: float,
        active_from_output: bool,
        slabs: tuple[Tensor, ...],
    ) -> None:
        """The batch held NaN or Inf: reduce it again, counting them and leaving them out."""
        self._add_output_masked(a, layout)
        if z is not None:
            assert activation is not None
            self._add_preactivation_masked(z, layout, activation, tau)
        elif active_from_output:
            assert activation is not None
            _flags_from_output(activation, a, slabs[_FLAGS])
            flags = torch.nan_to_num(slabs[_FLAGS], nan=0.0)
            self.moments[ACTIVE].add_(flags.sum(layout.sample_axes))

    def add_preactivation(
        self,
        z: Tensor,
        layout: Layout,
        activation: Activation,
        tau: float,
        count_active: bool,
        workspace: Workspace | None = None,
    ) -> bool:
        """Fold in ``z`` alone (in-place sites, before the op overwrites it).

        Returns True when the active count is left for ``add(..., active_from_output=True)``:
        only when ``count_active`` is False and the batch held no NaN or Inf.
        """
        if layout.units != self.units:
            self.check_units(layout)
        n = z.numel() // self.units
        if n == 0:
            return False
        z = _readable(z)
        if kernels.fits(z, layout):
            return self._add_preactivation_compiled(
                z, layout, activation, tau, count_active, workspace
            )
        batch = self._batch
        batch.prepare(z)
        values = []
        if count_active:
            flags = slabs_like(workspace, z, 1)[0]
            flags.copy_(activation.active(z, tau))
            values.append(torch.sum(flags, layout.sample_axes))
        values += mean_and_square(z, layout)
        first = ACTIVE if count_active else Z_SUM
        batch.write(first, values)
        if not batch.finite(first, Z_SUMSQ + 1):
            self._add_preactivation_masked(z, layout, activation, tau)
            return False
        batch.add_to(self._totals_block(first, Z_SUMSQ + 1), first, Z_SUMSQ + 1, n)
        self._z_rows += n
        return not count_active

    def _add_preactivation_compiled(
        self,
        z: Tensor,
        layout: Layout,
        activation: Activation,
        tau: float,
        count_active: bool,
        workspace: Workspace | None,
    ) -> bool:
        """``add_preactivation`` by the compiled kernel: sums of ``z`` and ``z^2`` in one pass."""
        zero = self._zero_shift
        if zero is None or zero.dtype != z.dtype:
            zero = self._zero_shift = torch.zeros(self.units, dtype=z.dtype)
        if not kernels.reduce_batch(z, None, zero, layout, self._sums):
            self._add_preactivation_masked(z, layout, activation, tau)
            return False
        self._totals_block(Z_SUM, Z_SUMSQ + 1).add_(self._sums_block(SUM, SUMSQ + 1))
        if count_active:
            flags = slabs_like(workspace, z, 1)[0]
            flags.copy_(activation.active(z, tau))
            self.moments[ACTIVE].add_(torch.sum(flags, layout.sample_axes))
        self._z_rows += z.numel() // self.units
        return not count_active

    def _add_output_masked(self, a: Tensor, layout: Layout) -> None:
        dims = layout.sample_axes
        finite = torch.isfinite(a)
        self.nonfinite.add_((~finite).sum())
        zero = torch.zeros((), dtype=a.dtype, device=a.device)
        d = torch.where(finite, self._shifted(a, layout), zero)
        self.count.add_(finite.sum(dims))
        self.moments[SUM].add_(d.sum(dims))
        self.moments[SUMSQ].add_((d * d).sum(dims))
        if self.cross_index is not None:
            rows_ok = layout.as_matrix(finite)[:, self.cross_index].all(1)
            # float64: a batch with NaN/Inf is rare, and its products are not centred
            sub = layout.as_matrix(d)[:, self.cross_index][rows_ok].to(torch.float64)
            self.cross_count.add_(rows_ok.sum())
            self.cross_sum.add_(sub.sum(0))
            self.cross_prod.add_(sub.T @ sub)

    def _add_preactivation_masked(
        self, z: Tensor, layout: Layout, activation: Activation, tau: float
    ) -> None:
        dims = layout.sample_axes
        finite = torch.isfinite(z)
        self.nonfinite.add_((~finite).sum())
        zc = torch.where(finite, z, torch.zeros((), dtype=z.dtype, device=z.device))
        self.z_count.add_(finite.sum(dims))
        self.moments[Z_SUM].add_(zc.sum(dims))
        self.moments[Z_SUMSQ].add_((zc * zc).sum(dims))
        self.moments[ACTIVE].add_((activation.active(z, tau) & finite).sum(dims))

    def add_gradient(self, grad: Tensor) -> None:
        """Sum of squares of a backward pass's gradient at the site: one pass (a dot product of
        the flattened gradient with itself; its count waits in a Python int, like the rows)."""
        g = grad.detach()
        if g.dtype not in _FLOATS:
            g = g.float()
        flat = g.reshape(-1)
        self.grad_sumsq.add_(torch.dot(flat, flat))
        self._grad_values += flat.numel()

    # --- merging -------------------------------------------------------------------------------

    def rebased(self, new_shift: Tensor) -> SiteStatistics:
        """The same statistics expressed around another per-unit reference value."""
        other = self.copy()
        new_shift = new_shift.to(self.shift.device, torch.float64)
        delta = self.shift - new_shift
        s, ss, n = self.sum, self.sumsq, self.count
        other.shift = new_shift.clone()
        other.moments[SUM] = s + n * delta
        other.moments[SUMSQ] = ss + 2.0 * delta * s + n * delta * delta
        if self.cross_index is not None:
            dk = delta[self.cross_index]
            cs = self.cross_sum
            other.cross_sum = cs + self.cross_count * dk
            other.cross_prod = (
                self.cross_prod
                + torch.outer(cs, dk)
                + torch.outer(dk, cs)
                + self.cross_count * torch.outer(dk, dk)
            )
        return other

    def merged(self, other: SiteStatistics) -> SiteStatistics:
        """The statistics of both sets of samples, as one pass over them would give."""
        if other.field_names() != self.field_names() or other.units != self.units:
            raise ProbeError("cannot merge statistics of sites with different structure")
        if (
            self.cross_index is not None
            and other.cross_index is not None  # the field names above say it is
            and not torch.equal(self.cross_index.cpu(), other.cross_index.cpu())
        ):
            raise ProbeError("cannot merge statistics gathered over different redundancy subsets")
        if not other.initialised:
            return self.copy()
        if not self.initialised:
            return other.to(self.count.device)
        aligned = other.to(self.count.device).rebased(self.shift)
        result = self.copy()
        for name, value in aligned.tensors():
            if name != "shift":
                getattr(result, name).add_(value)
        return result


def _batch_mean_near(a: Tensor, layout: Layout, first: Tensor, check: bool) -> Tensor:
    """Per unit, ``first + mean(a - first)`` in float64 (over the finite values of ``a`` when
    ``check``; 0 for a unit with none); a unit whose values all equal ``first`` gets it exactly."""
    offsets = torch.sub(a, first.view(layout.broadcast_shape))
    dims = layout.sample_axes
    if check:
        finite = torch.isfinite(offsets)
        offsets = torch.where(finite, offsets, torch.zeros((), dtype=a.dtype, device=a.device))
        count = finite.sum(dims)
        mean = offsets.sum(dims, dtype=torch.float64) / count.clamp(min=1)
        return torch.where(count > 0, first.double() + mean, torch.zeros_like(mean))
    return first.double() + offsets.mean(dims, dtype=torch.float64)


def _zeros(device: torch.device | str) -> Callable[..., Tensor]:
    def zeros(*shape: int) -> Tensor:
        return torch.zeros(shape, dtype=torch.float64, device=device)

    return zeros


_FLOATS = (torch.float32, torch.float64)


def _readable(x: Tensor) -> Tensor:
    """The tensor as reduced: floating point, outside autograd (hooks may run in training)."""
    if x.requires_grad:
        x = x.detach()
    return x if x.dtype in _FLOATS else x.float()


def _flags_from_output(activation: Activation, a: Tensor, out: Tensor) -> None:
    """1 where the unit is active, from the output (the activation's shortcut); ``torch.sign``,
    the shortcut of ReLU, Abs and Han, writes straight into scratch memory."""
    count = activation.count_from_output
    if count is torch.sign:
        torch.sign(a, out=out)
    else:
        assert count is not None  # called only for activations with a shortcut
        out.copy_(count(a))
