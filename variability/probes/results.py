"""What a probe reports: one ``SiteResult`` per site, the output's, and the network's verdict."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from variability.probes import figures
from variability.probes.statistics import ACTIVE, SUM, SUMSQ, Z_SUMSQ, SiteStatistics
from variability.probes.thresholds import Status, Thresholds

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
    status: Status
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
    layer: str = ""
    shape: tuple[int, ...] | None = None

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


COUNT_TYPES = ("int", "int | None")
"""The annotations of SiteResult's counts (units, samples, dead units...)."""


@dataclass(frozen=True)
class UnprobedCall:
    """Activation calls seen but not measured: the site name they would have had, the
    function, and why (not a floating-point tensor, not selected by ``sites=``, ...)."""

    name: str
    function: str
    reason: str


SiteSource = tuple[str, str, str, int, SiteStatistics]
"""What a site's figures are made from: name, kind, source, depth and its statistics."""


def summarise_sites(sources: list[SiteSource], thresholds: Thresholds) -> list[SiteResult]:
    """The figures of many sites at once (DEFINITIONS.md; formulas in figures.py).

    A Monitor recording every step asks for every site's figures at every step, and NumPy costs
    microseconds per call whatever the size. So the per-unit arithmetic runs once over the units
    of all sites laid end to end, and per-site sums are taken with ``np.add.reduceat``; units
    never seen (count 0) are masked out of every sum.
    """
    if not sources:
        return []
    for *_, stats in sources:
        stats.flush()
    units = np.array([stats.units for *_, stats in sources])
    starts = np.concatenate(([0], np.cumsum(units)[:-1]))
    per_unit = _PerUnit([stats for *_, stats in sources], starts, thresholds)
    pre = [i for i, (*_, stats) in enumerate(sources) if stats.has_preactivation]
    gates = _Gates([sources[i][4] for i in pre]) if pre else None
    gate_of = {site: position for position, site in enumerate(pre)}
    results = []
    for i, (name, kind, source, depth, stats) in enumerate(sources):
        seen = int(per_unit.units_seen[i])
        v = float(per_unit.variability[i]) if seen else float("nan")
        constant = int(per_unit.constant[i])
        result: dict[str, Any] = dict(
            name=name,
            kind=kind,
            source=source,
            depth=depth,
            units=stats.units,
            samples=int(per_unit.samples[i]),
            variability=v,
            status=thresholds.status(v),
            constant_units=constant,
            constant_fraction=constant / seen if seen else float("nan"),
            nonfinite=int(stats.nonfinite.item()),
            rms=float(per_unit.rms[i]),
        )
        if gates is not None and i in gate_of:
            result.update(gates.figures(gate_of[i]))
            if seen:
                result["status"] = thresholds.status(v, result["dead_fraction"])
        if stats.cross_index is not None:
            first, last = starts[i], starts[i] + stats.units
            result.update(
                _redundancy(stats, per_unit.seen[first:last], float(per_unit.rms[i]), thresholds)
            )
        grad_count = stats.grad_count.item()
        if grad_count > 0:
            result["gradient_rms"] = float(figures.rms(stats.grad_sumsq.item(), grad_count))
        results.append(SiteResult(**result))
    return results


class _PerUnit:
    """Output figures of every site: per-unit moments of all sites end to end, and per-site
    sums of them over the units seen (formulas in figures.py)."""

    def __init__(
        self, sites: list[SiteStatistics], starts: np.ndarray, thresholds: Thresholds
    ) -> None:
        count = np.concatenate([_numpy(s.count) for s in sites])
        moments = np.concatenate([_numpy(s.moments)[SUM : SUMSQ + 1] for s in sites], axis=1)
        reference = np.concatenate([_numpy(s.shift) for s in sites])
        self.seen, _, self.variance, self.mean_square = figures.unit_moments(
            count, moments[0], moments[1], reference
        )
        sums = figures.per_site(np.stack([self.seen, self.variance, self.mean_square]), starts)
        self.units_seen, variance_sum, self.mean_square_sum = sums
        self.variability = figures.variability(variance_sum, self.mean_square_sum)
        self.rms = figures.rms(self.mean_square_sum, self.units_seen)
        units = np.diff(np.append(starts, count.size))
        self.unit_rms = np.repeat(self.rms, units)
        constant = self.seen & figures.constant_units(
            np.sqrt(self.variance), self.unit_rms, thresholds.constant
        )
        self.constant = figures.per_site(constant.astype(np.int64), starts)
        self.samples = np.maximum.reduceat(count, starts)


class _Gates:
    """Figures of the activation sites: activation ratios, dead and linear units, shift."""

    def __init__(self, sites: list[SiteStatistics]) -> None:
        units = np.array([s.units for s in sites])
        self.starts = starts = np.concatenate(([0], np.cumsum(units)[:-1]))
        self.ends = starts + units
        z_count = np.concatenate([_numpy(s.z_count) for s in sites])
        rows = np.concatenate([_numpy(s.moments)[ACTIVE : Z_SUMSQ + 1] for s in sites], axis=1)
        active, z_sum, z_sumsq = rows
        self.unit_ratio = figures.unit_activation_ratio(active, z_count)
        z_seen = z_count > 0
        zn = np.where(z_seen, z_count, 1.0)
        z_mean, z_mean_square = z_sum / zn, z_sumsq / zn
        shift = np.where(z_seen, figures.unit_activation_shift(z_mean, z_mean_square), 0.0)
        ratio = self.unit_ratio
        per_unit = np.stack(
            [
                z_seen,
                z_seen & figures.dead_units(ratio),
                z_seen & figures.linear_units(ratio),
                shift,
                active,
                z_count,
            ]
        ).astype(np.float64)
        (self.units_seen, self.dead, self.linear, shift_sum, active_sum, z_count_sum) = (
            figures.per_site(per_unit, starts)
        )
        self.activation_ratio = figures.activation_ratio(active_sum, z_count_sum)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.shift = np.where(self.units_seen > 0, shift_sum / self.units_seen, np.nan)

    def figures(self, i: int) -> dict[str, Any]:
        seen = max(int(self.units_seen[i]), 1)
        dead, linear = int(self.dead[i]), int(self.linear[i])
        return dict(
            activation_ratio=_optional(float(self.activation_ratio[i])),
            unit_activation_ratio=self.unit_ratio[self.starts[i] : self.ends[i]].copy(),
            dead_units=dead,
            dead_fraction=dead / seen,
            linear_units=linear,
            linear_fraction=linear / seen,
            activation_shift=_optional(float(self.shift[i])),
        )


def _numpy(x: Tensor) -> np.ndarray:
    """A float64 statistics tensor as a NumPy array (no copy on the CPU)."""
    if x.device.type == "cpu" and not x.requires_grad:
        return x.numpy()
    return x.detach().cpu().numpy()


def _redundancy(
    stats: SiteStatistics, seen: np.ndarray, site_rms: float, thresholds: Thresholds
) -> dict[str, Any]:
    """The redundancy over the site's non-constant units (judged on the cross products' own
    variances, against the site's RMS, by figures.constant_units)."""
    rows = stats.cross_count.item()
    assert stats.cross_index is not None  # called for sites with cross products only
    index = stats.cross_index.cpu().numpy()
    if rows <= 0:
        return dict(redundancy=None, redundancy_units=0)
    m = stats.cross_sum.cpu().numpy() / rows
    covariance = stats.cross_prod.cpu().numpy() / rows - np.outer(m, m)
    std = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    keep = ~figures.constant_units(std, np.full(std.shape, site_rms), thresholds.constant)
    keep &= seen[index]
    return dict(
        redundancy=_optional(figures.redundancy(covariance, keep)), redundancy_units=int(keep.sum())
    )


@dataclass(frozen=True)
class ProbeResults:
    """Figures of every probe site in depth order, the output's, and the network's C2C verdict.

    As a collection it holds every measured place, the output last, as its repr and
    ``to_pandas`` show them: iterating, ``len`` and ``results[name]`` (``results["output"]``
    included) agree. ``sites`` holds the nonlinearities alone.
    """

    sites: tuple[SiteResult, ...]
    output: SiteResult | None
    thresholds: Thresholds
    samples: int
    unused_sites: tuple[str, ...] = ()
    unprobed_calls: dict[UnprobedCall, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def network_collapsed(self) -> bool | None:
        """Network C2C: the output is collapsed (every probe input gives the same prediction).
        None when there is no verdict: no output was measured, or no finite value reached it."""
        if self.output is None or self.output.status == Status.NO_DATA:
            return None
        return self.output.status == Status.COLLAPSED

    @property
    def first_collapsed_site(self) -> str | None:
        """The first site, in depth order, whose variability is at or below the collapse level."""
        return next((s.name for s in self.sites if s.status == Status.COLLAPSED), None)

    @property
    def first_collapsing_site(self) -> str | None:
        """The first site, in depth order, whose variability is at or below the collapsing level
        (collapsing or collapsed); a site without data is neither."""
        return next((s.name for s in self.sites if s.status.at_or_below_collapsing), None)

    def __getitem__(self, name: str) -> SiteResult:
        for site in self.all_sites():
            if site.name == name:
                return site
        raise KeyError(f"no site named {name!r}; sites: {', '.join(self.site_names())}")

    def __iter__(self) -> Iterator[SiteResult]:
        return iter(self.all_sites())

    def __len__(self) -> int:
        return len(self.all_sites())

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
            "unprobed_calls": [
                {"name": c.name, "function": c.function, "reason": c.reason, "calls": n}
                for c, n in self.unprobed_calls.items()
            ],
            "notes": list(self.notes),
        }

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_pandas(self):
        """One row per site (the output last), indexed by site name; per-unit ratios summarised
        by quantiles. Counts are integers (pandas' ``Int64``: missing where not defined)."""
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
        frame = pd.DataFrame(rows).set_index("name")
        counts = [f.name for f in fields(SiteResult) if f.type in COUNT_TYPES]
        return frame.astype({column: "Int64" for column in counts if column in frame})

    def __repr__(self) -> str:
        rows = [("site", "kind", "units", "AR", "dead%", "V", "status")]
        for s in self.all_sites():
            ar = "-" if s.activation_ratio is None else f"{s.activation_ratio:.3f}"
            dead = "-" if s.dead_fraction is None else f"{100 * s.dead_fraction:.1f}"
            rows.append((s.name, s.kind, str(s.units), ar, dead, f"{s.variability:.3g}", s.status))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [f"ProbeResults({self.samples} samples, {len(self.sites)} sites)"]
        for row in rows:  # names and kinds in full, left-aligned; numbers right-aligned
            cells = [
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append(" ".join(cells[:-1]) + "  " + row[-1])
        for call, count in self.unprobed_calls.items():
            lines.append(f"not probed: {call.name} ({call.function}, {count} calls: {call.reason})")
        lines.extend(f"note: {note}" for note in self.notes)
        collapsed = self.network_collapsed
        if collapsed is not None:
            verdict = "collapsed" if collapsed else "not collapsed"
        elif self.output is None:
            verdict = "no verdict (no output measured)"
        else:
            verdict = "no verdict (no finite value reached the output)"
        first = self.first_collapsed_site
        lines.append(
            f"network: {verdict}"
            + (f"; first collapsed site: {first}" if first else "")
            + f" (collapsed at V <= {self.thresholds.collapsed:g}, "
            f"collapsing at V <= {self.thresholds.collapsing:g}, tau = {self.thresholds.tau:g})"
        )
        return "\n".join(lines)
