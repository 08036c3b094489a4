"""What a probe reports: one ``SiteResult`` per site, the output's, and the network's verdict."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from variability.probes import figures
from variability.probes.statistics import ACTIVE, SUM, SUMSQ, Z_SUM, Z_SUMSQ, SiteStatistics
from variability.probes.thresholds import Thresholds

SCHEMA_VERSION = 1
"""Version of the JSON layout written by ``ProbeResults.to_dict`` (documented in docs/)."""


@dataclass(frozen=True)
class SiteResult:
    """Every figure of one probe site (None where a figure is not defined for it)."""

    name: str
    kind: str
    source: str
    depth: int
    units: int
    samples: int
    variability: float
    status: str
    constant_units: int
    constant_fraction: float
    nonfinite: int
    rms: float
    activation_ratio: float | None = None
    dead_units: int | None = None
    dead_fraction: float | None = None
    linear_units: int | None = None
    linear_fraction: float | None = None
    activation_shift: float | None = None
    redundancy: float | None = None
    redundancy_units: int | None = None
    gradient_rms: float | None = None
    unit_activation_ratio: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = [_json_number(v) for v in value.tolist()]
            elif isinstance(value, float):
                value = _json_number(value)
            out[f.name] = value
        return out


def _json_number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _optional(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def summarise_site(
    name: str,
    kind: str,
    source: str,
    depth: int,
    stats: SiteStatistics,
    thresholds: Thresholds,
) -> SiteResult:
    """Turn one site's sufficient statistics into its figures (DEFINITIONS.md).

    A Monitor recording every step calls this for every site at every step: the moment rows are
    read as one array, and units never seen are only filtered out when there are any.
    """
    stats.flush()
    moments = _numpy(stats.moments)
    count = _numpy(stats.count)
    seen = count > 0
    all_seen = bool(seen.all())
    n = count if all_seen else np.where(seen, count, 1.0)
    mean_shifted = moments[SUM] / n
    variance = np.maximum(moments[SUMSQ] / n - mean_shifted * mean_shifted, 0.0)
    mean = _numpy(stats.shift) + mean_shifted
    mean_square = variance + mean * mean
    units_seen = count.size if all_seen else int(seen.sum())
    var_seen, msq_seen = (
        (variance, mean_square) if all_seen else (variance[seen], mean_square[seen])
    )
    v = figures.variability(var_seen, msq_seen) if units_seen else float("nan")
    constant = figures.constant_units(var_seen, msq_seen, thresholds.constant)
    constant_count = int(np.count_nonzero(constant))
    result: dict[str, Any] = dict(
        name=name,
        kind=kind,
        source=source,
        depth=depth,
        units=stats.units,
        samples=int(count.max()) if count.size else 0,
        variability=v,
        status=thresholds.status(v) if units_seen else "no data",
        constant_units=constant_count,
        constant_fraction=constant_count / units_seen if units_seen else float("nan"),
        nonfinite=int(stats.nonfinite.item()),
        rms=figures.rms(float(msq_seen.sum()), units_seen),
    )
    if stats.has_preactivation:
        z_count = _numpy(stats.z_count)
        active = moments[ACTIVE]
        unit_ratio = figures.unit_activation_ratio(active, z_count)
        z_seen = z_count > 0
        z_all_seen = bool(z_seen.all())
        zn = z_count if z_all_seen else np.where(z_seen, z_count, 1.0)
        ratio_seen = unit_ratio if z_all_seen else unit_ratio[z_seen]
        n_units = max(ratio_seen.size, 1)
        dead = figures.dead_units(ratio_seen)
        linear = figures.linear_units(ratio_seen)
        z_mean, z_mean_square = moments[Z_SUM] / zn, moments[Z_SUMSQ] / zn
        if not z_all_seen:
            z_mean, z_mean_square = z_mean[z_seen], z_mean_square[z_seen]
        result.update(
            activation_ratio=_optional(figures.activation_ratio(active, z_count)),
            unit_activation_ratio=unit_ratio,
            dead_units=dead,
            dead_fraction=dead / n_units,
            linear_units=linear,
            linear_fraction=linear / n_units,
            activation_shift=_optional(figures.activation_shift(z_mean, z_mean_square)),
        )
    if stats.cross_index is not None:
        result.update(_redundancy(stats, variance, mean_square, seen, thresholds))
    grad_count = stats.grad_count.item()
    if grad_count > 0:
        result["gradient_rms"] = figures.rms(stats.grad_sumsq.item(), grad_count)
    return SiteResult(**result)


def _numpy(x) -> np.ndarray:
    """A float64 statistics tensor as a NumPy array (no copy on the CPU)."""
    if x.device.type == "cpu" and not x.requires_grad:
        return x.numpy()
    return x.detach().cpu().numpy()


def _redundancy(
    stats: SiteStatistics,
    variance: np.ndarray,
    mean_square: np.ndarray,
    seen: np.ndarray,
    thresholds: Thresholds,
) -> dict[str, Any]:
    rows = stats.cross_count.item()
    index = stats.cross_index.cpu().numpy()
    if rows <= 0:
        return dict(redundancy=None, redundancy_units=0)
    m = stats.cross_sum.cpu().numpy() / rows
    covariance = stats.cross_prod.cpu().numpy() / rows - np.outer(m, m)
    site_rms = math.sqrt(float(np.sum(mean_square[seen])) / max(int(seen.sum()), 1))
    std = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    keep = (std > thresholds.constant * site_rms) & seen[index]
    return dict(
        redundancy=_optional(figures.redundancy(covariance, keep)), redundancy_units=int(keep.sum())
    )


@dataclass(frozen=True)
class ProbeResults:
    """Figures of every probe site in depth order, the output's, and the network's C2C verdict."""

    sites: tuple[SiteResult, ...]
    output: SiteResult | None
    thresholds: Thresholds
    samples: int
    unused_sites: tuple[str, ...] = ()

    @property
    def network_collapsed(self) -> bool | None:
        """Network C2C: the output is collapsed (every probe input gives the same prediction)."""
        return None if self.output is None else self.output.status == "collapsed"

    @property
    def first_collapsed_site(self) -> str | None:
        """The first site, in depth order, whose variability is at or below the collapse level."""
        return next((s.name for s in self.sites if s.status == "collapsed"), None)

    @property
    def first_collapsing_site(self) -> str | None:
        return next((s.name for s in self.sites if s.status != "healthy"), None)

    def __getitem__(self, name: str) -> SiteResult:
        for site in self.all_sites():
            if site.name == name:
                return site
        raise KeyError(f"no site named {name!r}; sites: {', '.join(self.site_names())}")

    def __iter__(self) -> Iterator[SiteResult]:
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    def site_names(self) -> list[str]:
        return [s.name for s in self.sites]

    def all_sites(self) -> list[SiteResult]:
        return [*self.sites, *([self.output] if self.output is not None else [])]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "thresholds": self.thresholds.to_dict(),
            "samples": self.samples,
            "verdict": {
                "network_collapsed": self.network_collapsed,
                "output_variability": None
                if self.output is None
                else _json_number(self.output.variability),
                "first_collapsed_site": self.first_collapsed_site,
                "first_collapsing_site": self.first_collapsing_site,
            },
            "sites": [s.to_dict() for s in self.sites],
            "output": None if self.output is None else self.output.to_dict(),
            "unused_sites": list(self.unused_sites),
        }

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_pandas(self):
        """One row per site (the output last); per-unit ratios summarised by quantiles."""
        import pandas as pd

        rows = []
        for site in self.all_sites():
            row = site.to_dict()
            ratios = row.pop("unit_activation_ratio")
            if ratios is not None:
                values = np.array([np.nan if r is None else r for r in ratios], dtype=float)
                finite = values[np.isfinite(values)]
                for q, label in ((0.0, "min"), (0.5, "median"), (1.0, "max")):
                    row[f"unit_activation_ratio_{label}"] = (
                        float(np.quantile(finite, q)) if finite.size else None
                    )
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        header = f"{'site':<24} {'kind':<10} {'units':>6} {'AR':>6} {'dead%':>6} {'V':>9}  status"
        lines = [f"ProbeResults({self.samples} samples, {len(self.sites)} sites)", header]
        for s in self.all_sites():
            ar = "-" if s.activation_ratio is None else f"{s.activation_ratio:.3f}"
            dead = "-" if s.dead_fraction is None else f"{100 * s.dead_fraction:.1f}"
            lines.append(
                f"{s.name[:24]:<24} {s.kind[:10]:<10} {s.units:>6} {ar:>6} {dead:>6} "
                f"{s.variability:>9.3g}  {s.status}"
            )
        verdict = "collapsed" if self.network_collapsed else "not collapsed"
        first = self.first_collapsed_site
        lines.append(
            f"network: {verdict}"
            + (f"; first collapsed site: {first}" if first else "")
            + f" (collapsed at V <= {self.thresholds.collapsed:g}, "
            f"collapsing at V <= {self.thresholds.collapsing:g}, tau = {self.thresholds.tau:g})"
        )
        return "\n".join(lines)
