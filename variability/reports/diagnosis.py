"""The diagnosis in plain words: which figure at which site points where signal starts to die,
and what commonly helps. Pure: results in, hints out (the CLI prints them, reports show them).

Rules, each firing at most once, at the first site (in depth order) where it holds:

- ``nonfinite``: NaN or Inf values reached a site (they are left out of every figure);
- ``collapsed``: a site's (or the output's) V is at or below the collapse level;
- ``collapsing``: otherwise, a site's V is at or below the collapsing level;
- ``dead``: at least ``DEAD_LEVEL`` of a site's units are never active on the probe set
  (``variability.probes.too_many_dead``, the Monitor's warning too);
- ``shift``: a sigmoid-like site's activation shift is at least ``SHIFT_LEVEL``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from variability.probes import DEAD_LEVEL, ProbeResults, SiteResult, Status, too_many_dead

__all__ = ["DEAD_LEVEL", "SHIFT_KINDS", "SHIFT_LEVEL", "Hint", "diagnose"]

SHIFT_LEVEL = 0.5
"""A sigmoid-like site is flagged when its activation shift is at least this."""
SHIFT_KINDS = ("sigmoid", "tanh", "hardsigmoid", "hardtanh")
"""Bounded activations where a shifted pre-activation saturates units (LCW's setting)."""

_DEPTH_ADVICE = (
    "What commonly helps: fewer layers at this parameter budget, wider layers, or absolute-value "
    "(Abs) or Han layers, which resist collapse better than ReLU."
)


@dataclass(frozen=True)
class Hint:
    """One finding: the figure that triggered it, at which site, and what commonly helps.

    ``rule``: collapsed, collapsing, dead, shift or nonfinite. ``figure``: the JSON key of the
    figure (``variability``, ``dead_fraction``, ``activation_shift``, ``nonfinite``); ``value``
    crossed ``threshold``.
    """

    rule: str
    site: str
    figure: str
    value: float
    threshold: float
    finding: str
    advice: str

    @property
    def text(self) -> str:
        return f"{self.finding} {self.advice}"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "text": self.text}


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"


def _count(sites: list[SiteResult], what: str) -> str:
    return "" if len(sites) < 2 else f" {len(sites)} sites are {what}."


def _nonfinite(results: ProbeResults) -> Hint | None:
    hit = [s for s in results.all_sites() if s.nonfinite > 0]
    if not hit:
        return None
    first = hit[0]
    total = sum(s.nonfinite for s in hit)
    return Hint(
        "nonfinite",
        first.name,
        "nonfinite",
        float(total),
        0.0,
        f"{total} NaN/Inf values reached the probe sites, first at {first.name} "
        f"({first.nonfinite} there); they are left out of every figure.",
        "Look for NaN or Inf in the inputs or in the weights (a diverged training run leaves "
        "them).",
    )


def _collapse(results: ProbeResults) -> Hint | None:
    thresholds = results.thresholds
    output = results.output
    collapsed = [s for s in results.sites if s.status == Status.COLLAPSED]
    if results.network_collapsed and output is not None:
        start = collapsed[0] if collapsed else output
        where = (
            f"; the collapse starts at {start.name} (V = {start.variability:.3g})"
            if collapsed
            else ""
        )
        return Hint(
            "collapsed",
            start.name,
            "variability",
            start.variability,
            thresholds.collapsed,
            f"The network has collapsed to a constant: the output's V is {output.variability:.3g} "
            f"(collapsed at V <= {thresholds.collapsed:g}), so every probe input gets practically "
            f"the same prediction{where}.",
            _DEPTH_ADVICE,
        )
    if collapsed:
        first = collapsed[0]
        finding = f"Site {first.name} has collapsed (V = {first.variability:.3g} <= " + (
            f"{thresholds.collapsed:g})"
        )
        if output is not None:
            finding += (
                f", though the output still varies (V = {output.variability:.3g}): signal "
                "reaches the output around it"
            )
        return Hint(
            "collapsed",
            first.name,
            "variability",
            first.variability,
            thresholds.collapsed,
            finding + "." + _count(collapsed, "collapsed"),
            _DEPTH_ADVICE,
        )
    fading = [s for s in results.sites if s.status == Status.COLLAPSING]
    if output is not None and output.status == Status.COLLAPSING:
        fading = fading or [output]
    if fading:
        first = fading[0]
        return Hint(
            "collapsing",
            first.name,
            "variability",
            first.variability,
            thresholds.collapsing,
            f"Signal starts to fade at {first.name}: V = {first.variability:.3g} "
            f"(collapsing at V <= {thresholds.collapsing:g})." + _count(fading, "collapsing"),
            _DEPTH_ADVICE,
        )
    return None


def _dead(results: ProbeResults, level: float) -> Hint | None:
    hit = [s for s in results.sites if too_many_dead(s.dead_fraction, level)]
    if not hit:
        return None
    first = hit[0]
    assert first.dead_fraction is not None
    if first.kind in SHIFT_KINDS:
        meaning = "saturated on every probe input"
        advice = (
            "Saturated units pass almost no signal or gradient: smaller weights, or LCW layers "
            "(which remove the activation shift that pushes units into saturation), help."
        )
    else:
        meaning = "never active on any probe input"
        advice = (
            "Dead units pass no signal and get no gradient: a wider layer, fewer layers, or an "
            "activation without a flat side (absolute value, Han layers, LeakyReLU) helps."
        )
    return Hint(
        "dead",
        first.name,
        "dead_fraction",
        first.dead_fraction,
        level,
        f"At {first.name}, {_percent(first.dead_fraction)} of the units are dead: {meaning} "
        f"(flagged from {_percent(level)})." + _count(hit, f"at least {_percent(level)} dead"),
        advice,
    )


def _shift(results: ProbeResults, level: float) -> Hint | None:
    hit = [
        s
        for s in results.sites
        if s.kind in SHIFT_KINDS and s.activation_shift is not None and s.activation_shift >= level
    ]
    if not hit:
        return None
    first = hit[0]
    assert first.activation_shift is not None
    return Hint(
        "shift",
        first.name,
        "activation_shift",
        first.activation_shift,
        level,
        f"At {first.name} ({first.kind}), the activation shift is {first.activation_shift:.2f} "
        f"(flagged from {level:g}): the units' pre-activations sit away from zero, each on its "
        "own side, whatever the input." + _count(hit, "shifted"),
        "LCW layers (weight rows constrained to sum to zero) remove this shift; they are what "
        "lets deep sigmoid networks train.",
    )


def diagnose(
    results: ProbeResults, *, dead_level: float = DEAD_LEVEL, shift_level: float = SHIFT_LEVEL
) -> list[Hint]:
    """The hints the figures support, most serious first; empty when nothing stands out."""
    found = [
        _nonfinite(results),
        _collapse(results),
        _dead(results, dead_level),
        _shift(results, shift_level),
    ]
    return [hint for hint in found if hint is not None]
