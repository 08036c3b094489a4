"""Per-unit sufficient statistics of one probe site, reduced from each batch at once.

Why this shape:
- Every figure of DEFINITIONS.md is a function of per-unit counts, sums and sums of squares (and,
  for redundancy, a cross-product matrix over a fixed subset of units). Sums add, so chunks, batches
  and ranks merge exactly; memory is O(units), never O(samples).
- Collapse is a question about tiny variances (V <= 1e-3 means var/E[a^2] <= 1e-6), where raw
  float32 sums of squares cancel catastrophically. So output statistics are kept *shifted*: sums
  of ``a - c`` and ``(a - c)^2``, ``c`` a per-unit reference value from the first sample seen.
  A unit that never changes then has exactly zero variance, and the float32 batch reductions keep
  their precision relative to the variance, not to the mean. Totals are float64.
- The hooks run on every batch, so the fast path is fused: each batch's per-unit sums are written
  into one small float32 buffer, checked for NaN/Inf with a single scalar, and added to the float64
  totals in one operation. Only a batch that really holds NaN or Inf is reduced again with masks,
  so those values are counted and left out of every other figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from variability.probes.activations import Activation
from variability.probes.errors import ProbeError
from variability.probes.layout import Layout

# Rows of the per-unit moment matrix.
SUM, SUMSQ, ACTIVE, Z_SUM, Z_SUMSQ = range(5)

_FIELDS = ("shift", "moments", "count", "nonfinite", "grad_sumsq", "grad_count")
_FIELDS_PRE = ("z_count",)
_FIELDS_CROSS = ("cross_count", "cross_sum", "cross_prod")


class SiteStatistics:
    """Sufficient statistics of one site (float64 tensors on the model's device).

    ``moments`` rows, per unit: ``sum`` of ``a - shift``, ``sumsq`` of ``(a - shift)^2``, and for
    sites with a known activation, ``active`` (samples where the unit was active), ``z_sum`` and
    ``z_sumsq`` of the pre-activation. ``count`` / ``z_count``: finite samples per unit. Cross
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
        self._shift_cast: Tensor | None = None
        self._batch = torch.zeros(rows, units, dtype=torch.float32, device=device)

    def _batch_for(self, x: Tensor) -> Tensor:
        """The per-batch float buffer, in the data's precision and on its device."""
        if self._batch.dtype != x.dtype or self._batch.device != x.device:
            self._batch = torch.zeros_like(self._batch, dtype=x.dtype, device=x.device)
        return self._batch

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
        names = _FIELDS
        if self.has_preactivation:
            names += _FIELDS_PRE
        if self.cross_index is not None:
            names += _FIELDS_CROSS
        return names

    def flush(self) -> None:
        """Fold the fast-path row counts into the count tensors."""
        if self._rows:
            self.count.add_(self._rows)
            self._rows = 0
        if self._z_rows:
            self.z_count.add_(self._z_rows)
            self._z_rows = 0
        if self._cross_rows:
            self.cross_count.add_(self._cross_rows)
            self._cross_rows = 0

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
        other._batch = other._batch.to(device)
        return other

    # --- accumulation --------------------------------------------------------------------------

    def check_units(self, layout: Layout) -> None:
        if layout.units != self.units:
            raise ProbeError(
                f"a probe site had {self.units} units and now has {layout.units}; "
                "a site must keep its number of units across batches"
            )

    def _init_shift(self, a: Tensor, layout: Layout) -> None:
        first = layout.first_sample(a)
        if not bool(torch.isfinite(first).all()):
            matrix = layout.as_matrix(a)
            finite = torch.isfinite(matrix)
            row = torch.argmax(finite.to(torch.uint8), dim=0)
            candidate = matrix.gather(0, row.unsqueeze(0)).squeeze(0)
            first = torch.where(finite.any(0), candidate, torch.zeros_like(candidate))
        self.shift = first.detach().to(torch.float64)
        self._shift_cast = None
        self.initialised = True

    def _shifted(self, a: Tensor, layout: Layout) -> Tensor:
        if not self.initialised:
            self._init_shift(a, layout)
        shift = self._shift_cast
        if shift is None or shift.dtype != a.dtype or shift.device != a.device:
            # The reference value came from the data, so it is exact in the data's precision
            # (after a merge it may not be: then the stored float64 value is rounded once here,
            # and the rounded value is what the sums are taken around).
            shift = self.shift.to(device=a.device, dtype=a.dtype)
            exact = shift.to(self.shift.device, torch.float64)
            if not torch.equal(exact, self.shift):
                rebased = self.rebased(exact)
                for name, value in rebased.tensors():
                    setattr(self, name, value)
            self._shift_cast = shift
        return a - shift.view(layout.broadcast_shape)

    def add(
        self,
        a: Tensor,
        layout: Layout,
        z: Tensor | None = None,
        activation: Activation | None = None,
        tau: float = 0.1,
        active_from_output: bool = False,
    ) -> None:
        """Fold one batch in: the output ``a``, and ``z`` when the site has an activation.

        ``active_from_output`` counts active units from ``a`` with the activation's shortcut
        (for an in-place site whose ``z`` was folded in by ``add_preactivation`` beforehand).
        """
        self.check_units(layout)
        a = _floating(a)
        dims = layout.sample_axes
        batch = self._batch_for(a)
        d = self._shifted(a, layout)
        cross = self._cross(d, layout)
        torch.sum(d, dims, out=batch[SUM])
        if cross is not None and self.cross_is_all:
            batch[SUMSQ].copy_(torch.diagonal(cross))
        else:
            torch.sum(d.mul_(d), dims, out=batch[SUMSQ])
        last = SUMSQ + 1
        if z is not None:
            assert activation is not None
            z = _floating(z).to(a.dtype)
            self._fill_preactivation(z, dims, activation, tau, a)
            last = Z_SUMSQ + 1
        elif active_from_output:
            assert activation is not None and activation.count_from_output is not None
            torch.sum(activation.count_from_output(a), dims, out=batch[ACTIVE])
            last = ACTIVE + 1
        if not _finite(batch[:last]):
            self._add_output_masked(a, layout)
            if z is not None:
                self._add_preactivation_masked(z, layout, activation, tau)
            elif active_from_output:
                torch.sum(activation.count_from_output(a), dims, out=batch[ACTIVE])
                self.moments[ACTIVE].add_(torch.nan_to_num(batch[ACTIVE], nan=0.0))
            return
        self.moments[:last].add_(batch[:last])
        n = a.numel() // self.units
        self._rows += n
        if z is not None:
            self._z_rows += n
        if cross is not None:
            self._cross_rows += n
            self.cross_sum.add_(batch[SUM] if self.cross_is_all else batch[SUM][self.cross_index])
            self.cross_prod.add_(cross)

    def add_preactivation(
        self, z: Tensor, layout: Layout, activation: Activation, tau: float, count_active: bool
    ) -> bool:
        """Fold in ``z`` alone (in-place sites, before the op overwrites it).

        Returns True when the active count is left for ``add(..., active_from_output=True)``:
        only when ``count_active`` is False and the batch held no NaN or Inf.
        """
        self.check_units(layout)
        z = _floating(z)
        dims = layout.sample_axes
        batch = self._batch_for(z)
        torch.sum(z, dims, out=batch[Z_SUM])
        torch.sum(z * z, dims, out=batch[Z_SUMSQ])
        first = ACTIVE if count_active else Z_SUM
        if count_active:
            torch.sum(activation.active(z, tau), dims, out=batch[ACTIVE])
        if not _finite(batch[Z_SUM:]):
            self._add_preactivation_masked(z, layout, activation, tau)
            return False
        self.moments[first:].add_(batch[first:])
        self._z_rows += z.numel() // self.units
        return not count_active

    def _fill_preactivation(
        self, z: Tensor, dims: tuple[int, ...], activation: Activation, tau: float, a: Tensor
    ) -> None:
        batch = self._batch
        torch.sum(z, dims, out=batch[Z_SUM])
        torch.sum(z * z, dims, out=batch[Z_SUMSQ])
        if activation.count_from_output is not None:
            torch.sum(activation.count_from_output(a), dims, out=batch[ACTIVE])
        else:
            torch.sum(activation.active(z, tau), dims, out=batch[ACTIVE])

    def _cross(self, d: Tensor, layout: Layout) -> Tensor | None:
        if self.cross_index is None:
            return None
        matrix = layout.as_matrix(d)
        sub = matrix if self.cross_is_all else matrix[:, self.cross_index]
        return sub.T @ sub

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
            sub = layout.as_matrix(d)[:, self.cross_index][rows_ok]
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
        g = grad.detach().float()
        self.grad_sumsq.add_(torch.sum(g * g))
        self.grad_count.add_(g.numel())

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
        if self.cross_index is not None and not torch.equal(
            self.cross_index.cpu(), other.cross_index.cpu()
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


def _zeros(device: torch.device | str):
    def zeros(*shape: int) -> Tensor:
        return torch.zeros(shape, dtype=torch.float64, device=device)

    return zeros


def _floating(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _finite(block: Tensor) -> bool:
    """One scalar check: any NaN or Inf in a batch makes some per-unit sum non-finite."""
    return math.isfinite(block.sum().item())
