"""The layers the remedy can change, behind one small interface: scale a unit, set its bias.

Why an adapter per layer type: a "unit" is a weight row for a Linear, an output channel's filter
for a convolution, a row of ``v`` for an LCW layer (its weight is ``v B^T``, so scaling a row of
``v`` scales the weight row and keeps it summing to zero), and the gain of a normalisation
layer. Each adapter touches exactly the entries of the units it is told to, so every other
parameter entry stays bit-identical; it keeps a copy of each tensor before the first change, so
a failed remedy can put everything back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from variability.arch.lcw import LCWLinear

_NORMS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


@dataclass
class Saved:
    """Copies of parameters taken before their first change (``restore`` puts them back)."""

    tensors: dict[int, tuple[str, nn.Parameter, Tensor]] = field(default_factory=dict)

    def keep(self, name: str, parameter: nn.Parameter) -> None:
        if id(parameter) not in self.tensors:
            self.tensors[id(parameter)] = (name, parameter, parameter.detach().clone())

    def restore(self) -> None:
        with torch.no_grad():
            for _name, parameter, copy in self.tensors.values():
                parameter.copy_(copy)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.tensors.values()]


class Layer:
    """A layer whose output units the remedy can rescale (and shift, if it has a bias)."""

    kind = "layer"
    has_rows = False  # weight rows that see the layer's input (centring, analytic tracking)

    def __init__(self, path: str, module: nn.Module, saved: Saved) -> None:
        self.path = path
        self.module = module
        self.saved = saved

    # what each kind says
    def _scaled(self) -> tuple[str, nn.Parameter]:
        raise NotImplementedError

    @property
    def units(self) -> int:
        return self._scaled()[1].shape[0]

    @property
    def bias_parameter(self) -> nn.Parameter | None:
        bias = getattr(self.module, "bias", None)
        return bias if isinstance(bias, nn.Parameter) else None

    @property
    def has_bias(self) -> bool:
        return self.bias_parameter is not None

    def bias(self) -> Tensor:
        """The current bias per unit, float64 (zeros without a bias)."""
        bias = self.bias_parameter
        if bias is None:
            return torch.zeros(self.units, dtype=torch.float64)
        return bias.detach().double().cpu()

    def scale(self, alpha: Tensor, units: Tensor) -> None:
        """Multiply unit j's weights by ``alpha[j]`` for every j in ``units`` (indices)."""
        name, parameter = self._scaled()
        if units.numel() == 0:
            return
        self.saved.keep(self._qualified(name), parameter)
        with torch.no_grad():
            index = units.to(parameter.device)
            rows = parameter[index].double()
            factor = alpha[units].to(rows.device).reshape(-1, *([1] * (rows.dim() - 1)))
            parameter[index] = (rows * factor).to(parameter.dtype)

    def set_bias(self, beta: Tensor, units: Tensor) -> None:
        """Set unit j's bias to ``beta[j]`` for every j in ``units``."""
        bias = self.bias_parameter
        if bias is None or units.numel() == 0:
            return
        self.saved.keep(self._qualified("bias"), bias)
        with torch.no_grad():
            index = units.to(bias.device)
            bias[index] = beta[units].to(device=bias.device, dtype=bias.dtype)

    def row_moments(self) -> tuple[Tensor, Tensor]:
        """Per unit, the sum and the sum of squares of its weight row (float64)."""
        raise NotImplementedError

    def centre(self, units: Tensor) -> None:
        """Remove each listed row's mean, so the row sums to zero (LCW)."""
        raise NotImplementedError

    def _qualified(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name


def _parameter(module: nn.Module, name: str) -> nn.Parameter:
    """A module's parameter by name (typed: ``nn.Module.__getattr__`` could return anything)."""
    value = getattr(module, name)
    assert isinstance(value, nn.Parameter), f"{type(module).__name__}.{name} is not a parameter"
    return value


class RowLayer(Layer):
    """Linear and convolution layers: unit j is the row (filter) ``weight[j]``."""

    kind = "rows"
    has_rows = True

    def _scaled(self) -> tuple[str, nn.Parameter]:
        return "weight", _parameter(self.module, "weight")

    def row_moments(self) -> tuple[Tensor, Tensor]:
        rows = _parameter(self.module, "weight").detach().double().cpu().flatten(1)
        return rows.sum(1), (rows * rows).sum(1)

    def centre(self, units: Tensor) -> None:
        if units.numel() == 0:
            return
        weight = _parameter(self.module, "weight")
        self.saved.keep(self._qualified("weight"), weight)
        with torch.no_grad():
            index = units.to(weight.device)
            rows = weight[index].double()
            mean = rows.flatten(1).mean(1).reshape(-1, *([1] * (rows.dim() - 1)))
            weight[index] = (rows - mean).to(weight.dtype)


class LCWLayer(RowLayer):
    """An LCW layer: its weight ``v B^T`` is computed, so scale the rows of ``v``; its rows
    already sum to zero, so there is nothing to centre."""

    kind = "lcw"

    def _scaled(self) -> tuple[str, nn.Parameter]:
        return "v", _parameter(self.module, "v")

    def centre(self, units: Tensor) -> None:
        return None


class NormLayer(Layer):
    """Batch, instance, group and layer norm with a learned gain: unit j's scale is
    ``weight[j]``; the layer has no rows that see its input."""

    kind = "norm"

    def _scaled(self) -> tuple[str, nn.Parameter]:
        return "weight", _parameter(self.module, "weight")


def layer_for(path: str, module: nn.Module, saved: Saved) -> Layer | str:
    """The adapter for ``module``, or why the remedy cannot change it (one phrase)."""
    name = type(module).__name__
    if isinstance(module, LCWLinear):
        return LCWLayer(path, module, saved)
    if isinstance(module, nn.Linear):
        return RowLayer(path, module, saved)
    if isinstance(module, nn.modules.conv._ConvNd):
        if module.transposed:
            return f"{name} is a transposed convolution, whose output channels are not weight rows"
        return RowLayer(path, module, saved)
    if isinstance(module, _NORMS):
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter):
            return f"{name} has no learned gain to rescale (affine=False)"
        if weight.dim() != 1:
            return f"{name} normalises over several axes; its gain is not one number per unit"
        return NormLayer(path, module, saved)
    return (
        f"{name} has no weights the remedy rescales (it rescales Linear, LCW, convolution and "
        "normalisation layers)"
    )
