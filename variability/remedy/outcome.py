"""What a remedy did, site by site, and the error it raises when it cannot do what was asked."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from variability.errors import UserError

CHANGED = "changed"
UNCHANGED = "unchanged"  # nothing to do (centring a layer whose input has no shared mean)
FAILED = "failed"  # could not be done: bad input, listed in the error or in ``unchanged``


class RemedyError(UserError):
    """The remedy cannot do what was asked; the model was left exactly as it was."""


@dataclass(frozen=True)
class SiteOutcome:
    """One site: which layer was changed, how, and the site's pre-activation before and after.

    ``status``: ``changed`` (every unit reached the target, or was centred), ``unchanged``
    (nothing to do) or ``failed`` (``reason`` says why; with ``changed_units`` > 0 the other
    units were changed, in a partial remedy). ``how``: ``measured`` (from the probe set),
    ``analytic`` (AutoInit-style prediction) or ``centred``. ``rms_*``: the RMS of the
    pre-activation, ``sqrt(mean_j E[z_j^2])``; ``above_*``: the fraction of (unit, sample) pairs
    with ``z > 0``; both over the whole probe set.
    """

    site: str
    kind: str
    layer: str | None
    status: str
    units: int
    changed_units: int = 0
    how: str | None = None
    reason: str | None = None
    passes: int = 0
    rms_before: float | None = None
    rms_after: float | None = None
    above_before: float | None = None
    above_after: float | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def line(self) -> str:
        """The site, and why it was left (partly) unchanged."""
        where = f" (layer {self.layer})" if self.layer else ""
        return f"{self.site}{where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in asdict(self).items()
        }


@dataclass(frozen=True)
class Reinitialization:
    """The result of ``reinitialize``: the settings, one ``SiteOutcome`` per site in depth
    order, and the names of the parameters changed (every other one is bit-identical)."""

    method: str
    second_moment: float
    active_fraction: float
    center: bool
    samples: int
    sites: tuple[SiteOutcome, ...]
    changed_parameters: tuple[str, ...]

    @property
    def failed(self) -> tuple[SiteOutcome, ...]:
        """Sites the remedy could not fix (only in a partial remedy; otherwise it raised)."""
        return tuple(s for s in self.sites if s.failed)

    def __getitem__(self, site: str) -> SiteOutcome:
        for outcome in self.sites:
            if outcome.site == site:
                return outcome
        raise KeyError(f"no site named {site!r}; sites: {', '.join(s.site for s in self.sites)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "second_moment": self.second_moment,
            "active_fraction": self.active_fraction,
            "center": self.center,
            "samples": self.samples,
            "sites": [s.to_dict() for s in self.sites],
            "changed_parameters": list(self.changed_parameters),
        }

    def __repr__(self) -> str:
        lines = [
            f"Reinitialization(method={self.method!r}, second_moment={self.second_moment:g}, "
            f"active_fraction={self.active_fraction:g}, center={self.center}, "
            f"{len(self.changed_parameters)} parameters changed)"
        ]
        for s in self.sites:
            rms = "-" if s.rms_after is None else f"{s.rms_after:.3g}"
            why = f"  ({s.reason})" if s.reason else ""
            lines.append(
                f"  {s.site:<24} {s.status:<9} {s.changed_units}/{s.units} units"
                f"  layer {s.layer or '-'}  RMS after {rms}{why}"
            )
        return "\n".join(lines)
