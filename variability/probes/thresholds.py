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
    """

    tau: float = 0.1
    collapsed: float = 1e-3
    collapsing: float = 0.05
    constant: float = 1e-3

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

    def status(self, variability: float) -> str:
        """'collapsed', 'collapsing' or 'healthy' for a site's variability V."""
        if variability <= self.collapsed:
            return "collapsed"
        if variability <= self.collapsing:
            return "collapsing"
        return "healthy"

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
