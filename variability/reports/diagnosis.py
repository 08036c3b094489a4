"""The diagnosis in plain words: which figure at which site points where signal starts to die,
and what commonly helps. Pure: results (and what is known of the model) in, hints out (the CLI
prints them, reports show them).

Rules, each firing at most once, at the first site (in depth order) where it holds:

- ``nonfinite``: NaN or Inf values reached a site (they are left out of every figure);
- ``collapsed``: a site's (or the output's) V is at or below the collapse level;
- ``collapsing``: otherwise, a site's V is at or below the collapsing level;
- ``dead``: at least ``Thresholds.dead`` (default ``DEAD_LEVEL``) of a site's units are never
  active on the probe set (``variability.probes.too_many_dead``: the "dead units" status and the
  Monitor's warning use the same rule);
- ``shift``: a sigmoid-like site's activation shift is at least ``SHIFT_LEVEL``.

The advice depends on the model. For this toolkit's own families (FC, LCW, Han, built at a
parameter budget) it speaks of depth, width and Han or LCW layers. For any other model it speaks
of what that model's author can change: the initialisation scale, normalisation, the activation,
residual connections and, where the run is known, the learning rate; each piece of advice cites
the measured figure that calls for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from variability.probes import (
    DEAD_LEVEL,
    ProbeResults,
    SiteResult,
    Status,
    too_many_dead,
)

__all__ = [
    "DEAD_LEVEL",
    "SHIFT_KINDS",
    "SHIFT_LEVEL",
    "Hint",
    "ModelFacts",
    "diagnose",
    "facts_of",
]

SHIFT_LEVEL = 0.5
"""A sigmoid-like site is flagged when its activation shift is at least this."""
SHIFT_KINDS = ("sigmoid", "tanh", "hardsigmoid", "hardtanh")
"""Bounded activations where a shifted pre-activation saturates units (LCW's setting)."""
FAMILIES = ("fc", "lcw", "han")
"""The toolkit's own families, whose advice speaks of depth, width and Han or LCW layers."""
NORMALISATION = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)

_DEPTH_ADVICE = (
    "What commonly helps: fewer layers at this parameter budget, wider layers, or absolute-value "
    "(Abs) or Han layers, which resist collapse better than ReLU."
)


@dataclass(frozen=True)
class ModelFacts:
    """What the diagnosis knows of the model beyond its figures.

    ``family``: "fc", "lcw" or "han" for a model this toolkit built (None: anyone else's).
    ``normalised``: whether it has normalisation layers (None: unknown). ``lr``: the learning
    rate of the run that trained it, when the run is known.
    """

    family: str | None = None
    normalised: bool | None = None
    lr: float | None = None

    @property
    def ours(self) -> bool:
        return self.family in FAMILIES


def facts_of(model: nn.Module, lr: float | None = None) -> ModelFacts:
    """The facts of a model: its family if this toolkit built it, whether it normalises."""
    spec = getattr(model, "spec", None)
    family = spec.get("family") if isinstance(spec, dict) else None
    normalised = any(isinstance(m, NORMALISATION) for m in model.modules())
    return ModelFacts(family if family in FAMILIES else None, normalised, lr)


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


def _nonfinite(results: ProbeResults, facts: ModelFacts) -> Hint | None:
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
        "them"
        + (f"; this run's learning rate, {facts.lr:g}, may be too large" if facts.lr else "")
        + ").",
    )


def _collapse(results: ProbeResults, facts: ModelFacts) -> Hint | None:
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
            _collapse_advice(results, start, facts),
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
            _collapse_advice(results, first, facts),
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
            _collapse_advice(results, first, facts),
        )
    return None


def _dead(results: ProbeResults, level: float, facts: ModelFacts) -> Hint | None:
    hit = [s for s in results.sites if too_many_dead(s.dead_fraction, level)]
    if not hit:
        return None
    first = hit[0]
    assert first.dead_fraction is not None
    if first.kind in SHIFT_KINDS:
        meaning = "saturated on every probe input"
        advice = _saturated_advice(first, facts)
    else:
        meaning = "never active on any probe input"
        advice = _dead_advice(first, facts)
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


def _shift(results: ProbeResults, level: float, facts: ModelFacts) -> Hint | None:
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
        _shift_advice(facts),
    )


def _collapse_advice(results: ProbeResults, start: SiteResult, facts: ModelFacts) -> str:
    """What helps a collapse: for the toolkit's families depth and width; for another model,
    what the site's scale (RMS) says of its initialisation, normalisation and shortcuts."""
    if facts.ours:
        return _DEPTH_ADVICE
    first = results.sites[0] if results.sites else start
    scale = f"RMS {first.rms:.3g} at {first.name} and {start.rms:.3g} at {start.name}"
    if start.rms < first.rms / 10:
        advice = (
            f"The signal's scale shrinks too ({scale}): check the initialisation scale (weights "
            "drawn with the activation's gain, such as Kaiming's for ReLU)"
        )
    else:
        advice = (
            f"The scale holds ({scale}) while the variation dies: every input is mapped to "
            "nearly the same point, so the layers' weights or biases, not their size, are at "
            "fault; an activation without a flat side (GELU, LeakyReLU) keeps inputs apart"
        )
    if facts.normalised is False:
        advice += "; normalisation layers (LayerNorm, BatchNorm) keep each layer's output spread"
    return advice + "; residual (skip) connections give the signal a path around the layers."


def _dead_advice(site: SiteResult, facts: ModelFacts) -> str:
    if facts.ours:
        return (
            "Dead units pass no signal and get no gradient: a wider layer, fewer layers, or an "
            "activation without a flat side (absolute value, Han layers, LeakyReLU) helps."
        )
    shift = (
        f" (activation shift {site.activation_shift:.2f}: the pre-activations sit on one side "
        "of zero)"
        if site.activation_shift is not None
        else ""
    )
    advice = (
        f"Dead units pass no signal and get no gradient{shift}. An activation with a slope "
        "everywhere (LeakyReLU, GELU) lets them recover"
    )
    if facts.normalised is False:
        advice += "; normalisation before the activation re-centres the pre-activations"
    if facts.lr is not None:
        advice += f"; a smaller learning rate than this run's {facts.lr:g} pushes fewer units dead"
    return advice + "."


def _saturated_advice(site: SiteResult, facts: ModelFacts) -> str:
    if facts.ours:
        return (
            "Saturated units pass almost no signal or gradient: smaller weights, or LCW layers "
            "(which remove the activation shift that pushes units into saturation), help."
        )
    advice = (
        f"Saturated units pass almost no signal or gradient (RMS {site.rms:.3g} at "
        f"{site.name}): smaller initial weights keep the pre-activations inside the "
        "activation's slope"
    )
    if facts.normalised is False:
        advice += ", and so does normalisation before the activation"
    return advice + "; an activation that does not saturate (ReLU, GELU) avoids it."


def _shift_advice(facts: ModelFacts) -> str:
    if facts.ours:
        return (
            "LCW layers (weight rows constrained to sum to zero) remove this shift; they are "
            "what lets deep sigmoid networks train."
        )
    return (
        "Normalisation before the activation re-centres each unit's pre-activation"
        + (" (the model has none)" if facts.normalised is False else "")
        + "; zero-sum weight rows (LCW layers) remove the shift at its source; a zero-centred "
        "activation (tanh instead of sigmoid) lessens it."
    )


def diagnose(
    results: ProbeResults,
    facts: ModelFacts | None = None,
    *,
    dead_level: float | None = None,
    shift_level: float = SHIFT_LEVEL,
) -> list[Hint]:
    """The hints the figures support, most serious first; empty when nothing stands out.

    ``facts``: what is known of the model (``facts_of``); without them, the advice is the one
    for any model, not for the toolkit's families. ``dead_level``: by default
    ``results.thresholds.dead``, the level at which a site's status says "dead units".
    """
    facts = facts or ModelFacts()
    level = results.thresholds.dead if dead_level is None else dead_level
    found = [
        _nonfinite(results, facts),
        _collapse(results, facts),
        _dead(results, level, facts),
        _shift(results, shift_level, facts),
    ]
    return [hint for hint in found if hint is not None]
