"""The thresholds behind every verdict, kept together so results can echo them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from variability.probes.errors import ProbeError


@dataclass(frozen=True)
class Thresholds:
    """Levels that turn figures into verdicts (DEFINITIONS.md gives the defaults).

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
    dead: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.tau <= 1.0:
            raise ProbeError(f"tau must lie in (0, 1], got {self.tau}")
        if not 0.0 <= self.collapsed <= self.collapsing <= 1.0:
            raise ProbeError(
                "collapse levels must satisfy 0 <= collapsed <= collapsing <= 1, "
                f"got collapsed={self.collapsed}, collapsing={self.collapsing}"
            )
        if self.constant < 0.0:
            raise ProbeError(f"the constant-unit tolerance must be >= 0, got {self.constant}")
        if not 0.0 < self.dead <= 1.0:
            raise ProbeError(f"the dead-unit level must lie in (0, 1], got {self.dead}")

    def status(self, variability: float, dead_fraction: float | None = None) -> str:
        """'collapsed', 'collapsing', 'dead units' or 'healthy' for a site's variability V and
        the share of its units that are dead (None: a site without an activation)."""
        if variability <= self.collapsed:
            return "collapsed"
        if variability <= self.collapsing:
            return "collapsing"
        if dead_fraction is not None and dead_fraction >= self.dead:
            return "dead units"
        return "healthy"

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
