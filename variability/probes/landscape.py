"""Landscape measures: they need the model itself, not only hooks on a probe set.

- ``v3``: the variability paper's third-order measure in our exact form (DEFINITIONS.md): the mean
  absolute third forward difference of the standardised output over a regular grid on the box.
- ``pieces_per_line``: along random segments between probe inputs, how many pieces the activation
  pattern cuts each segment into (for a piecewise-linear network: its linear pieces).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from variability.probes.errors import ProbeError
from variability.probes.evaluation import evaluating, model_device
from variability.probes.finder import Call, SiteFinder
from variability.probes.probe import first_tensor
from variability.probes.sites import SiteSelector, select_sites
from variability.probes.thresholds import Thresholds
from variability.probes.wrappers import unwrap


def _device_of(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return model_device(model)


def infer_input_dim(model: nn.Module) -> int:
    """The input size of a model whose first layer has ``in_features`` (Linear and friends)."""
    for module in model.modules():
        features = getattr(module, "in_features", None)
        if isinstance(features, int):
            return features
    raise ProbeError("cannot tell the model's input size: pass dim= (the number of input features)")


def grid_points(dim: int, grid: int, low: float, high: float) -> Tensor:
    """All points of the regular grid, first coordinate slowest (so they reshape to the grid)."""
    axis = torch.linspace(low, high, grid, dtype=torch.float64)
    mesh = torch.meshgrid(*([axis] * dim), indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


def _evaluate(model: nn.Module, x: Tensor, batch_size: int, device: torch.device) -> np.ndarray:
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    outputs = []
    with evaluating(model):
        for batch in x.split(batch_size):
            out = first_tensor(model(batch.to(device=device, dtype=dtype)))
            if out is None:
                raise ProbeError("the model returned no tensor")
            outputs.append(out.reshape(out.shape[0], -1).double().cpu())
    return torch.cat(outputs).numpy()


def third_difference_measure(values: np.ndarray) -> float:
    """V3 of outputs on a grid: ``values`` has one axis per input dimension, then output units.

    Each output unit is standardised over the grid (a unit with std 0 contributes zeros), then the
    third forward difference is taken along each input axis; the result is the mean absolute value.
    """
    dims = values.ndim - 1
    flat = values.reshape(-1, values.shape[-1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        standard = np.where(std > 0, (values - mean) / np.where(std > 0, std, 1.0), 0.0)
    total, count = 0.0, 0
    for axis in range(dims):
        diff = np.diff(standard, n=3, axis=axis)
        total += float(np.abs(diff).sum())
        count += diff.size
    return total / count if count else 0.0


def v3(
    model: nn.Module,
    *,
    dim: int | None = None,
    grid: int = 81,
    low: float = -1.0,
    high: float = 1.0,
    batch_size: int = 8192,
    device: torch.device | str | None = None,
) -> float:
    """V3 on ``grid`` points per axis over the box ``[low, high]^dim`` (dim <= 3)."""
    dim = infer_input_dim(model) if dim is None else dim
    if not 1 <= dim <= 3:
        raise ProbeError(f"V3 is defined for inputs of 1 to 3 dimensions; this model takes {dim}")
    if grid < 4:
        raise ProbeError(f"V3 needs at least 4 grid points per axis, got {grid}")
    points = grid_points(dim, grid, low, high)
    values = _evaluate(model, points, batch_size, _device_of(model, device))
    return third_difference_measure(values.reshape(*([grid] * dim), -1))


@dataclass(frozen=True)
class LinePieces:
    """Pieces per line: the mean over lines, its spread, and each line's count."""

    mean: float
    std: float
    per_line: np.ndarray
    points: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "per_line": self.per_line.tolist(),
            "points": self.points,
        }


class _PatternChanges:
    """Marks, for consecutive samples of one batch, whether any unit changed state: told about
    every activation call by the same site finder as the probe (finder.py)."""

    def __init__(self, model: nn.Module, sites: SiteSelector, tau: float) -> None:
        unwrapped = unwrap(model)
        self.network = unwrapped.module
        selection = select_sites(self.network, sites)
        self.finder = SiteFinder(model, self.network, selection, self, compiled=unwrapped.compiled)
        self.tau = tau
        self.changed: Tensor | None = None
        self.seen = 0

    def _mark(self, z: Tensor, activation: Any) -> None:
        self.seen += 1
        if activation.piece is not None:
            pattern = activation.piece(z)
        else:
            pattern = activation.active(z, self.tau)
        pattern = pattern.reshape(z.shape[0], -1)
        step = (pattern[1:] != pattern[:-1]).any(dim=1)
        self.changed = step if self.changed is None else self.changed | step

    def before(self, call: Call, z: Tensor) -> None:
        with torch.no_grad():
            self._mark(z, call.site.activation)

    def after(self, call: Call, z: Tensor | None, a: Any) -> None:
        if z is not None and call.site.activation is not None:
            with torch.no_grad():
                self._mark(z, call.site.activation)

    def output(self, a: Any, axis: int | None) -> None:
        pass

    def unprobed(self, name: str, function: str, reason: str) -> None:
        pass

    def __enter__(self) -> _PatternChanges:
        self.finder.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finder.detach()


def pieces_per_line(
    model: nn.Module,
    inputs: Tensor,
    *,
    lines: int = 32,
    points: int = 1024,
    sites: SiteSelector = "auto",
    tau: float = Thresholds.tau,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> LinePieces:
    """Mean number of pieces the activation pattern cuts a segment into, over random segments.

    Each segment joins two distinct probe inputs chosen at random (seeded); it is sampled at
    ``points`` evenly spaced points, ends included. A segment along which the pattern changes c
    times between consecutive points has c + 1 pieces. Two changes closer than one step count once,
    so the figure is a lower bound that rises with ``points``.
    """
    if inputs.shape[0] < 2:
        raise ProbeError("pieces per line needs at least two probe inputs to draw segments between")
    if points < 2 or lines < 1:
        raise ProbeError("pieces per line needs points >= 2 and lines >= 1")
    generator = torch.Generator().manual_seed(seed)
    run_device = _device_of(model, device)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    t = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    counts = np.zeros(lines, dtype=np.int64)
    with evaluating(model), _PatternChanges(model, sites, tau) as recorder:
        for line in range(lines):
            i, j = torch.randperm(inputs.shape[0], generator=generator)[:2].tolist()
            start = inputs[i].double()
            end = inputs[j].double()
            shape = (points,) + (1,) * start.dim()
            segment = start + t.view(shape) * (end - start)
            recorder.changed = None
            model(segment.to(device=run_device, dtype=dtype))
            changes = 0 if recorder.changed is None else int(recorder.changed.sum())
            counts[line] = changes + 1
        if not recorder.seen:
            raise ProbeError("pieces per line needs sites with a known activation; none ran")
    return LinePieces(
        mean=float(counts.mean()),
        std=float(counts.std()),
        per_line=counts,
        points=points,
    )
