"""The diagnosis rules against hand-built results: each hint fires on its figure, at the first
site where the figure crosses its threshold, and not just short of it."""

from __future__ import annotations

import pytest

from variability.probes import ProbeResults, SiteResult, Thresholds
from variability.reports.diagnosis import DEAD_LEVEL, SHIFT_LEVEL, diagnose

LEVELS = Thresholds()


def site(
    name: str,
    v: float = 0.5,
    kind: str = "relu",
    dead: float | None = 0.0,
    shift: float | None = 0.1,
    nonfinite: int = 0,
    depth: int = 0,
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
        rms=1.0,
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
        results(site("a"), site("b", 0.01), site("c", 0.0005), site("d", 0.0), output_v=0.0)
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
    hints = diagnose(results(site("a", dead=0.2), site("b", dead=dead), site("c", dead=dead)))
    assert rules(hints) == (["dead"] if fires else [])
    if fires:
        (hint,) = hints
        assert hint.site == "b" and hint.figure == "dead_fraction" and hint.value == dead
        assert f"{100 * dead:.0f}% of the units are dead" in hint.finding
        assert "absolute value" in hint.advice and "wider layer" in hint.advice


def test_dead_sigmoid_units_are_called_saturated():
    (hint,) = diagnose(results(site("s", kind="sigmoid", dead=0.6)))
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
