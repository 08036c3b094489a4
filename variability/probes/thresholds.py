"""The thresholds behind every verdict, kept together so results can echo them, and the verdicts.

``Thresholds`` holds the levels of docs/figures.md (tau, the collapse levels, the constant-unit
tolerance): the one home of their defaults, which ``Probe``, the CLI and the reports read.
``Status`` is a site's verdict. ``DEAD_LEVEL`` and ``too_many_dead`` are the one home of the
dead-unit level that the Monitor's warnings and the diagnosis both flag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from variability.probes.errors import ProbeError


class Status(StrEnum):
    """A site's verdict on its variability V and its dead units. A ``str``: JSON, tables and
    f-strings show the plain word (``"collapsed"``), and it equals that word."""

    HEALTHY = "healthy"
    COLLAPSING = "collapsing"  # V at or below the collapsing level (and above the collapsed one)
    COLLAPSED = "collapsed"  # V at or below the collapse level
    DEAD_UNITS = "dead units"  # V above the collapsing level, but many of its units are dead
    NO_DATA = "no data"  # no finite value reached the site: V is not defined

    @property
    def at_or_below_collapsing(self) -> bool:
        """Collapsing or collapsed: V at or below the collapsing level."""
        return self in (Status.COLLAPSING, Status.COLLAPSED)


DEAD_LEVEL = 0.5
"""A site is flagged (Monitor warning, diagnosis) when at least this fraction of its units are
dead."""


def too_many_dead(dead_fraction: float | None, level: float = DEAD_LEVEL) -> bool:
    """Whether a site's dead fraction is at least ``level`` (False where it is not defined)."""
    return dead_fraction is not None and dead_fraction >= level


@dataclass(frozen=True)
class Thresholds:
    """Levels that turn figures into verdicts (DEFINITIONS.md gives the defaults): the one home
    of every threshold. ``Probe(model, thresholds=Thresholds(collapsed=1e-4))`` takes them, the
    results echo them (``results.thresholds``), and the CLI's options and the reports read them.

    tau: a unit is active where ``|phi'(z)| >= tau * max|phi'|``.
    collapsed / collapsing: a site's variability at or below these is collapsed / collapsing.
    constant: a unit is constant when its output std is at most ``constant * RMS`` of the site.
    dead: a site with at least this share of its units dead has the status "dead units" (the
    diagnosis flags it from the same level), unless it is collapsed or collapsing.
    """

    tau: float = 0.1
    collapsed: float = 1e-3
    collapsing: float = 0.05
    constant: float = 1e-3
    dead: float = DEAD_LEVEL

    def __post_init__(self) -> None:
        if not 0.0 < self.tau <= 1.0:
            raise ProbeError(f"tau must lie in (0, 1], got {self.tau}")
        if not 0.0 <= self.collapsed <= self.collapsing <= 1.0:
            raise ProbeError(
                "collapse levels must satisfy 0 <= collapsed <= collapsing <= 1, "
                f"got collapsed={self.collapsed}, collapsing={self.collapsing}"
            )
        if not self.constant >= 0.0:  # NaN too
            raise ProbeError(f"the constant-unit tolerance must be >= 0, got {self.constant}")
        if not 0.0 < self.dead <= 1.0:
            raise ProbeError(f"the dead-unit level must lie in (0, 1], got {self.dead}")

    def status(self, variability: float, dead_fraction: float | None = None) -> Status:
        """The verdict on a site's variability V (NaN: no data) and the share of its units that
        are dead (None: a site without an activation, whose units cannot die)."""
        if math.isnan(variability):
            return Status.NO_DATA
        if variability <= self.collapsed:
            return Status.COLLAPSED
        if variability <= self.collapsing:
            return Status.COLLAPSING
        if too_many_dead(dead_fraction, self.dead):
            return Status.DEAD_UNITS
        return Status.HEALTHY

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Thresholds:
        """The thresholds a record holds (``to_dict``'s keys, as in run.json or a probe's JSON);
        a level it does not hold takes its default, and other keys are ignored."""
        names = [f.name for f in fields(cls)]
        return cls(**{k: float(values[k]) for k in names if values and values.get(k) is not None})
