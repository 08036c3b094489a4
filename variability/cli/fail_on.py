"""``--fail-on``: conditions on the probe's figures that make the command exit with code 3.

- ``collapsed``: the output or any site is collapsed (V at or below the collapse level), or saw
  no finite value at all (a network with no finite output cannot be called healthy);
- ``collapsing``: the output or any site is collapsing or collapsed, or saw no finite value;
- ``nonfinite``: the output or any site saw a NaN or Inf value;
- ``dead:FRACTION``: some site has more than FRACTION of its units dead (``dead:0``: any).
"""

from __future__ import annotations

from dataclasses import dataclass

from variability.errors import UserError
from variability.probes import ProbeResults, Status

__all__ = ["FailOn", "parse_fail_on"]

_FORMS = "collapsed, collapsing, nonfinite or dead:FRACTION (a number in [0, 1), like dead:0.5)"


@dataclass(frozen=True)
class FailOn:
    """One ``--fail-on`` condition; ``check`` says why it holds, or None."""

    kind: str
    fraction: float | None = None

    @property
    def label(self) -> str:
        return self.kind if self.fraction is None else f"{self.kind}:{self.fraction:g}"

    def check(self, results: ProbeResults) -> str | None:
        sites = results.all_sites()
        if self.kind == "dead":
            assert self.fraction is not None
            fraction = self.fraction
            dead = [s for s in sites if s.dead_fraction is not None and s.dead_fraction > fraction]
            if dead:
                s = dead[0]
                return f"{s.name} has {100 * (s.dead_fraction or 0):.1f}% dead units"
            return None
        if self.kind == "nonfinite":
            hit = [s for s in sites if s.nonfinite]
            if hit:
                return f"{hit[0].name} saw {hit[0].nonfinite:,} NaN/Inf values"
            return None
        if self.kind == "collapsed":
            hit = [s for s in sites if s.status in (Status.COLLAPSED, Status.NO_DATA)]
        else:
            hit = [
                s for s in sites if s.status.at_or_below_collapsing or s.status == Status.NO_DATA
            ]
        if hit:
            s = hit[0]
            if s.status == Status.NO_DATA:
                return f"{s.name} saw no finite value ({s.nonfinite:,} NaN/Inf), so no V"
            return f"{s.name} is {s.status} (V = {s.variability:.3g})"
        return None


def parse_fail_on(specs: list[str]) -> list[FailOn]:
    """The conditions of ``--fail-on`` options; a UserError for anything else."""
    conditions = []
    for spec in specs:
        for text in (p.strip().lower() for p in spec.split(",") if p.strip()):
            if text in ("collapsed", "collapsing", "nonfinite"):
                conditions.append(FailOn(text))
                continue
            kind, colon, value = text.partition(":")
            if kind != "dead" or not colon:
                raise UserError(f"--fail-on {text!r} is not a condition: use {_FORMS}")
            try:
                fraction = float(value)
            except ValueError:
                fraction = -1.0
            if not 0.0 <= fraction < 1.0:
                raise UserError(f"--fail-on {text!r}: the fraction must lie in [0, 1); {_FORMS}")
            conditions.append(FailOn("dead", fraction))
    return conditions
