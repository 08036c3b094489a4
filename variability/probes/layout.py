"""Which axis of a site's tensor holds the units, and which axes hold samples.

DEFINITIONS.md: ``(N, F)`` has F units; convolution-shaped ``(N, C, *spatial)`` has the C channels
as units with every position a sample; a sequence ``(N, T, F)`` has F units, every position a
sample. Three-dimensional tensors are ambiguous (Conv1d's ``(N, C, L)`` against a sequence's
``(N, T, F)``), and a Linear layer applied to channels-last images makes ``(N, H, W, C)``; so the
unit axis is decided per site from the layer that produced its input (``producer_axis``: the
last axis after a Linear, axis 1 after a convolution or batch norm), and by the shape rule
only where no such layer made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

from torch import Tensor, nn

from variability.probes.errors import ProbeError

_CHANNELS_SECOND = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)
_FEATURES_LAST = (nn.Linear, nn.Bilinear, nn.LayerNorm, nn.Embedding)
_REGISTERED: dict[type[nn.Module], int] = {}


def register_layer(module_type: type[nn.Module], axis: int) -> None:
    """Say which axis of ``module_type``'s output holds its units (-1 or 1), for a layer the
    probe does not know (the project's LCWLinear): sites after it then read their units off
    it, and name it as the layer that made their input."""
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"register_layer needs an nn.Module subclass, got {module_type!r}")
    if axis not in (-1, 1):
        raise ValueError(f"a layer's unit axis is -1 (features last) or 1 (channels), not {axis}")
    _REGISTERED[module_type] = axis


def producer_axis(module: nn.Module) -> int | None:
    """The unit axis of what ``module`` outputs: -1 (features last) after a Linear, LayerNorm or
    Embedding; 1 (channels) after a convolution, batch/instance/group norm or pooling layer on
    ``(N, C, ...)``; what ``register_layer`` says for a registered type; None for any other."""
    if isinstance(module, _FEATURES_LAST):
        return -1
    if isinstance(module, _CHANNELS_SECOND):
        return 1
    for cls in type(module).__mro__:
        if cls in _REGISTERED:
            return _REGISTERED[cls]
    return None


@dataclass(frozen=True)
class Layout:
    """How one tensor shape splits into units and samples."""

    unit_axis: int  # non-negative
    ndim: int
    units: int

    @cached_property
    def sample_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.ndim) if i != self.unit_axis)

    @cached_property
    def broadcast_shape(self) -> tuple[int, ...]:
        """Shape that broadcasts a per-unit vector against the tensor."""
        return tuple(self.units if i == self.unit_axis else 1 for i in range(self.ndim))

    def as_matrix(self, x: Tensor) -> Tensor:
        """The tensor as (samples, units): a view for (N, F), a copy when units are not last."""
        if self.ndim == 2 and self.unit_axis == 1:
            return x
        if self.unit_axis != self.ndim - 1:
            x = x.movedim(self.unit_axis, -1)
        return x.reshape(-1, self.units)

    def channels_second(self, x: Tensor) -> Tensor:
        """The tensor with its units on axis 1 (as batch norm wants them): a view, or a copy when
        units are last but the tensor is not contiguous."""
        if self.unit_axis == 1:
            return x
        if self.unit_axis == self.ndim - 1:
            return x.reshape(-1, self.units)
        return x.movedim(self.unit_axis, 1)

    def first_sample(self, x: Tensor) -> Tensor:
        """The per-unit values at the first sample (index 0 along every sample axis)."""
        if self.unit_axis == self.ndim - 1:
            return x[(0,) * (self.ndim - 1)]
        return x[tuple(slice(None) if i == self.unit_axis else 0 for i in range(self.ndim))]


def as_site_tensor(x: Tensor) -> Tensor:
    """A site tensor with at least two axes: a flat (N,) tensor is N samples of one unit."""
    if x.dim() == 0:
        raise ProbeError("a probe site produced a 0-dimensional tensor: it has no samples to read")
    return x.unsqueeze(1) if x.dim() == 1 else x


def layout_of(x: Tensor, unit_axis: int | None = None) -> Layout:
    """The layout of a site tensor of two or more axes: ``unit_axis`` (from the layer that made
    the site's input, or the user's override), else the shape rule (``(N, F)``: F; ``(N, T, F)``:
    F; four axes or more: axis 1)."""
    ndim = x.dim()
    if unit_axis is not None:
        return _check(x, unit_axis)
    axis = 1 if ndim != 3 else 2
    return _layout(axis, ndim, x.shape[axis])


@cache
def _layout(unit_axis: int, ndim: int, units: int) -> Layout:
    """Layouts are few and immutable: share them, so their derived tuples are computed once."""
    return Layout(unit_axis=unit_axis, ndim=ndim, units=units)


def _check(x: Tensor, unit_axis: int) -> Layout:
    ndim = x.dim()
    if not -ndim <= unit_axis < ndim:
        shape = tuple(x.shape)
        raise ProbeError(f"unit_axis={unit_axis} does not exist in a tensor of shape {shape}")
    axis = unit_axis % ndim
    return _layout(axis, ndim, x.shape[axis])
