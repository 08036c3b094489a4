"""The diagnosis rules against hand-built results: each hint fires on its figure, at the first
site where the figure crosses its threshold, and not just short of it."""

from __future__ import annotations

import pytest

from variability.probes import ProbeResults, SiteResult, Thresholds
from variability.reports.diagnosis import DEAD_LEVEL, SHIFT_LEVEL, ModelFacts, diagnose, facts_of

LEVELS = Thresholds()
OURS = ModelFacts(family="fc")  # a model this toolkit built
THEIRS = ModelFacts(normalised=False)  # anyone else's, without normalisation layers


def site(
    name: str,
    v: float = 0.5,
    kind: str = "relu",
    dead: float | None = 0.0,
    shift: float | None = 0.1,
    nonfinite: int = 0,
    depth: int = 0,
    rms: float = 1.0,
) -> SiteResult:
    return SiteResult(
        name=name,
        kind=kind,
        source="module",
        depth=depth,
        units=10,
        samples=100,
        variability=v,
        status=LEVELS.status(v),
        constant_units=0,
        constant_fraction=0.0,
        nonfinite=nonfinite,
        rms=rms,
        activation_ratio=0.5,
        dead_units=None,
        dead_fraction=dead,
        activation_shift=shift,
    )


def results(*sites: SiteResult, output_v: float = 0.5, output_nonfinite: int = 0):
    output = site(
        "output", output_v, kind="output", dead=None, shift=None, nonfinite=output_nonfinite
    )
    return ProbeResults(tuple(sites), output, LEVELS, samples=100)


def rules(hints) -> list[str]:
    return [h.rule for h in hints]


def test_healthy_network_gets_no_hint():
    assert diagnose(results(site("a"), site("b", 0.3))) == []


def test_collapsed_network_names_where_the_collapse_starts():
    (hint,) = diagnose(
        results(site("a"), site("b", 0.01), site("c", 0.0005), site("d", 0.0), output_v=0.0),
        OURS,
    )
    assert hint.rule == "collapsed" and hint.site == "c" and hint.figure == "variability"
    assert hint.value == 0.0005 and hint.threshold == LEVELS.collapsed
    assert "the collapse starts at c" in hint.finding and "fewer layers" in hint.advice
    assert "Han" in hint.advice and "wider" in hint.advice


def test_collapsed_site_with_a_living_output():
    (hint,) = diagnose(results(site("a"), site("b", 0.0), site("c", 0.0), output_v=0.4))
    assert hint.rule == "collapsed" and hint.site == "b"
    assert (
        "though the output still varies" in hint.finding and "2 sites are collapsed" in hint.finding
    )


def test_collapsing_fires_at_the_level_and_not_above():
    at = diagnose(results(site("a"), site("b", LEVELS.collapsing), site("c", 0.02)))
    assert rules(at) == ["collapsing"] and at[0].site == "b" and at[0].value == LEVELS.collapsing
    assert "2 sites are collapsing" in at[0].finding
    assert diagnose(results(site("a"), site("b", LEVELS.collapsing * 1.001))) == []


def test_collapsing_output_without_a_collapsing_site():
    (hint,) = diagnose(results(site("a"), output_v=0.01))
    assert hint.rule == "collapsing" and hint.site == "output"


@pytest.mark.parametrize(("dead", "fires"), [(DEAD_LEVEL, True), (0.9, True), (0.49, False)])
def test_dead_units(dead, fires):
    hints = diagnose(results(site("a", dead=0.2), site("b", dead=dead), site("c", dead=dead)), OURS)
    assert rules(hints) == (["dead"] if fires else [])
    if fires:
        (hint,) = hints
        assert hint.site == "b" and hint.figure == "dead_fraction" and hint.value == dead
        assert f"{100 * dead:.0f}% of the units are dead" in hint.finding
        assert "absolute value" in hint.advice and "wider layer" in hint.advice


def test_dead_sigmoid_units_are_called_saturated():
    (hint,) = diagnose(results(site("s", kind="sigmoid", dead=0.6)), OURS)
    assert "saturated" in hint.finding and "LCW" in hint.advice


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_activation_shift_in_sigmoid_like_sites(kind):
    hints = diagnose(
        results(
            site("r", kind="relu", shift=0.9),
            site("s1", kind=kind, shift=SHIFT_LEVEL - 0.01),
            site("s2", kind=kind, shift=SHIFT_LEVEL),
            site("s3", kind=kind, shift=0.8),
        )
    )
    (hint,) = hints
    assert hint.rule == "shift" and hint.site == "s2" and hint.figure == "activation_shift"
    assert hint.value == SHIFT_LEVEL and hint.threshold == SHIFT_LEVEL
    assert "LCW" in hint.advice and "2 sites are shifted" in hint.finding


def test_relu_shift_is_not_flagged():
    assert diagnose(results(site("r", kind="relu", shift=0.95))) == []


def test_nonfinite_values_are_counted_over_every_site():
    hints = diagnose(
        results(site("a"), site("b", nonfinite=16), site("c", nonfinite=8), output_nonfinite=2)
    )
    (hint,) = hints
    assert hint.rule == "nonfinite" and hint.site == "b" and hint.value == 26
    assert "26 NaN/Inf values" in hint.finding and "(16 there)" in hint.finding


def test_hints_come_most_serious_first_and_serialise():
    hints = diagnose(
        results(
            site("a", kind="sigmoid", shift=0.9, dead=0.7, nonfinite=1),
            site("b", 0.0),
            output_v=0.0,
        )
    )
    assert rules(hints) == ["nonfinite", "collapsed", "dead", "shift"]
    as_dict = hints[1].to_dict()
    assert as_dict["text"] == hints[1].finding + " " + hints[1].advice
    assert set(as_dict) == {
        "rule",
        "site",
        "figure",
        "value",
        "threshold",
        "finding",
        "advice",
        "text",
    }


def test_a_users_model_gets_advice_for_it_tied_to_its_figures():
    """Not this toolkit's families: no word of depth at a budget or Han layers; the advice names
    initialisation, normalisation, the activation, residual connections, with the figures."""
    shrinking = results(
        site("a", rms=2.0), site("b", 0.01, rms=0.05), site("c", 0.0005, rms=1e-4), output_v=0.0
    )
    (hint,) = diagnose(shrinking, THEIRS)
    for toolkit_words in ("Han", "budget", "fewer layers"):
        assert toolkit_words not in hint.advice
    assert "RMS 2 at a and 0.0001 at c" in hint.advice  # the measured scale behind the advice
    assert "initialisation scale" in hint.advice and "normalisation" in hint.advice
    assert "residual" in hint.advice
    steady = results(site("a", rms=1.0), site("b", 0.0005, rms=0.9), output_v=0.0)
    (hint,) = diagnose(steady, ModelFacts(normalised=True))
    assert "scale holds (RMS 1 at a and 0.9 at b)" in hint.advice
    assert "initialisation scale" not in hint.advice and "normalisation layers" not in hint.advice
    (dead,) = diagnose(results(site("r", dead=0.8, shift=0.93)), ModelFacts(lr=0.1))
    assert "activation shift 0.93" in dead.advice and "LeakyReLU" in dead.advice
    assert "smaller learning rate than this run's 0.1" in dead.advice
    assert "wider layer" not in dead.advice and "Han" not in dead.advice
    (shift,) = diagnose(results(site("s", kind="sigmoid", shift=0.7)), THEIRS)
    assert "Normalisation before the activation" in shift.advice and "has none" in shift.advice


def test_the_model_tells_the_diagnosis_what_it_is():
    from torch import nn

    from variability import build_model

    assert facts_of(build_model("han", 2, 1, 3, width=4, seed=0)) == ModelFacts("han", False)
    theirs = nn.Sequential(nn.Linear(2, 4), nn.LayerNorm(4), nn.ReLU())
    assert facts_of(theirs, lr=0.01) == ModelFacts(None, True, 0.01)
    assert not facts_of(theirs).ours and facts_of(build_model("fc", 2, 1, 2, width=3)).ours


def test_the_status_column_and_the_diagnosis_agree_on_dead_units():
    """The README's deep narrow ReLU net: the sites the diagnosis calls dead carry a status that
    says so, from the same level, and no other site does."""
    import torch

    from variability import build_model, probe_model

    model = build_model("fc", d_in=2, d_out=1, depth=24, width=8, seed=0)
    results = probe_model(model, torch.rand(4096, 2) * 2 - 1)
    (dead,) = [h for h in diagnose(results) if h.rule == "dead"]
    flagged = [s.name for s in results.sites if s.dead_fraction >= results.thresholds.dead]
    assert [s.name for s in results.sites if s.status == "dead units"] == flagged
    assert dead.site == flagged[0] and dead.threshold == results.thresholds.dead
    assert f"{len(flagged)} sites are at least 50% dead" in dead.finding
    assert Thresholds().status(0.5, 0.5) == "dead units"
    assert Thresholds().status(0.5, 0.49) == "healthy"
    assert Thresholds().status(0.01, 0.9) == "collapsing"  # the graver status wins
