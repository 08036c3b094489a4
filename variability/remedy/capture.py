"""Reading what the remedy needs off the probe set: samples of one site's pre-activation (and
of its producing layer's output and input), and per-site second moments of every site.

Why samples and not the probe's streaming sums: the LSUV bias is a per-unit quantile, which
no sum gives. So the remedy keeps, for the one site it is working on, at most ``max_values``
values (an evenly spaced subset of the rows of every batch, the same rows for the site and the
layer); every forward pass stops as soon as that site has been read.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from variability.probes.layout import as_site_tensor, layout_of
from variability.probes.links import SiteLink, site_tap

DEFAULT_MAX_VALUES = 2**22
"""Values kept per site and pass (32 MB in float64): every row for small models, at least
4,096 samples per unit for sites of up to 1,024 units."""


class _Stop(BaseException):
    """Ends a forward pass once the site being read has been seen: a signal, not an error, so
    a model's own ``except Exception`` cannot swallow it."""


@dataclass
class SiteSamples:
    """Rows of one site, float64 on the CPU: ``z`` its pre-activation (samples x units), ``y``
    the producing layer's output at the same rows (when asked), and per input unit of that layer
    the mean of its input, with the input's overall mean square (when asked)."""

    z: Tensor
    y: Tensor | None = None
    input_mean: Tensor | None = None
    input_mean_square: float | None = None

    @property
    def layer_output(self) -> Tensor:
        """``y``, which a read that asked for the layer's output always holds."""
        assert self.y is not None, "the read did not ask for the layer's output"
        return self.y


@dataclass
class _Reader:
    link: SiteLink
    rows_per_batch: int
    want_site: bool
    want_output: bool
    want_input: bool
    input_axis: int | None
    z: list[Tensor] = field(default_factory=list)
    y: list[Tensor] = field(default_factory=list)
    output: Tensor | None = None
    input_sum: Tensor | None = None
    input_count: int = 0
    input_square: float = 0.0

    def on_layer_input(self, x: Any) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point() or self.input_axis is None:
            return
        axis = self.input_axis % x.dim()
        values = x.detach().movedim(axis, -1).reshape(-1, x.shape[axis]).double()
        values = values[torch.isfinite(values).all(dim=1)]
        total = values.sum(dim=0).cpu()
        self.input_sum = total if self.input_sum is None else self.input_sum + total
        self.input_count += values.shape[0]
        self.input_square += float(values.square().sum())
        if not (self.want_site or self.want_output):
            raise _Stop

    def on_layer_output(self, y: Any) -> None:
        if self.want_output and isinstance(y, Tensor):
            self.output = y.detach().clone()  # a residual add may update it in place

    def on_site(self, key: tuple[str, int], z: Tensor) -> None:
        if key != self.link.key:
            return
        shape = z.shape
        z = as_site_tensor(z.detach())
        layout = layout_of(z, self.link.unit_axis)
        rows = layout.as_matrix(z)
        pick = _evenly(rows.shape[0], self.rows_per_batch, rows.device)
        kept = rows[pick].double()
        finite = torch.isfinite(kept).all(dim=1)
        self.z.append(kept[finite].cpu())
        if self.want_output:
            if self.output is None or self.output.shape != shape:
                raise RuntimeError(
                    f"the output of {self.link.producer} does not have the shape of the input "
                    f"of site {self.link.name}"
                )
            made = layout.as_matrix(as_site_tensor(self.output))[pick].double()
            self.y.append(made[finite].cpu())
        raise _Stop


def _evenly(available: int, wanted: int, device: torch.device) -> Tensor:
    if wanted >= available:
        return torch.arange(available, device=device)
    return torch.linspace(0, available - 1, wanted, device=device).round().long()


def read_site(
    model: nn.Module,
    batches: Sequence[Any],
    link: SiteLink,
    layer: nn.Module,
    *,
    site: bool = True,
    output: bool = False,
    layer_input: bool = False,
    input_axis: int | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
) -> SiteSamples:
    """One pass over ``batches``, each forward stopped once the site (or, with only
    ``layer_input``, the layer) has been read."""
    rows = max(1, max_values // max(link.units, 1))
    reader = _Reader(
        link,
        max(1, math.ceil(rows / max(len(batches), 1))),
        site,
        output,
        layer_input,
        input_axis,
    )
    handles = []
    if layer_input:
        handles.append(
            layer.register_forward_pre_hook(
                lambda _m, args: reader.on_layer_input(args[0] if args else None)
            )
        )
    if output:
        handles.append(layer.register_forward_hook(lambda _m, _a, y: reader.on_layer_output(y)))
    try:
        with site_tap(model, reader.on_site if (site or output) else _ignore):
            for batch in batches:
                reader.output = None
                with contextlib.suppress(_Stop):
                    model(batch)
    finally:
        for handle in handles:
            handle.remove()
    samples = SiteSamples(z=_rows(reader.z, link.units))
    if output:
        samples.y = _rows(reader.y, link.units)
    if layer_input and reader.input_sum is not None and reader.input_count:
        samples.input_mean = reader.input_sum / reader.input_count
        values = reader.input_count * reader.input_sum.numel()
        samples.input_mean_square = reader.input_square / values
    return samples


def _ignore(_key: tuple[str, int], _z: Tensor) -> None:
    return None


def _rows(parts: list[Tensor], units: int) -> Tensor:
    if not parts:
        return torch.zeros(0, units, dtype=torch.float64)
    return torch.cat(parts)


@dataclass(frozen=True)
class Moments:
    """Per unit of one site over the whole probe set: ``E[z^2]`` and the fraction of ``z > 0``."""

    second: Tensor
    above: Tensor

    @property
    def rms(self) -> float:
        """``sqrt(mean_j E[z_j^2])``: the site's pre-activation RMS."""
        return math.sqrt(float(self.second.mean())) if self.second.numel() else float("nan")


def measure_sites(
    model: nn.Module, batches: Sequence[Any], links: Sequence[SiteLink]
) -> dict[str, Moments]:
    """Every site's pre-activation moments over every row of ``batches`` (one pass)."""
    wanted = {link.key: link for link in links}
    sums: dict[tuple[str, int], list[Tensor]] = {}

    def on_site(key: tuple[str, int], z: Tensor) -> None:
        link = wanted.get(key)
        if link is None:
            return
        z = as_site_tensor(z.detach())
        rows = layout_of(z, link.unit_axis).as_matrix(z).double()
        rows = rows[torch.isfinite(rows).all(dim=1)]
        entry = sums.setdefault(key, [torch.zeros(link.units, dtype=torch.float64)] * 3)
        sums[key] = [
            entry[0] + rows.square().sum(dim=0).cpu(),
            entry[1] + (rows > 0).sum(dim=0).double().cpu(),
            entry[2] + rows.shape[0],
        ]

    with site_tap(model, on_site):
        for batch in batches:
            model(batch)
    measured = {}
    for link in links:
        if link.key in sums:
            square, above, count = sums[link.key]
            count = count.clamp_min(1.0)
            measured[link.name] = Moments(square / count, above / count)
    return measured
