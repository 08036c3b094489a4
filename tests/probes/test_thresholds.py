"""Thresholds: one home for every level, taken by Probe, echoed in results, read back from JSON."""

import inspect
import json
import math
import warnings

import pytest
import torch
from torch import nn

from variability import Probe, ProbeError, Thresholds, pieces_per_line, probe_model
from variability.probes import DEAD_LEVEL
from variability.probes.statistics import SiteStatistics


def relu_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))


def test_probe_takes_thresholds_and_echoes_them():
    levels = Thresholds(tau=0.2, collapsed=0.3, collapsing=0.6, constant=0.01)
    model = relu_model()
    with Probe(model, thresholds=levels) as probe, torch.no_grad():
        model(torch.randn(50, 2))
    results = probe.results()
    assert probe.thresholds is levels and results.thresholds is levels
    assert json.loads(results.to_json())["thresholds"] == {
        "tau": 0.2,
        "collapsed": 0.3,
        "collapsing": 0.6,
        "constant": 0.01,
        "dead": DEAD_LEVEL,
    }
    assert Probe(model).thresholds == Thresholds()


def test_the_keyword_levels_still_work_and_say_they_are_deprecated():
    x = torch.randn(50, 2)
    model = relu_model()
    with pytest.warns(DeprecationWarning, match=r"thresholds=Thresholds\(collapsed=0\.6") as seen:
        probe = Probe(model, collapsed=0.6, collapsing=0.8)
    assert seen[0].filename == __file__  # the warning points at the caller
    assert probe.thresholds == Thresholds(collapsed=0.6, collapsing=0.8)
    with pytest.warns(DeprecationWarning):
        old = probe_model(model, x, tau=0.5, constant=0.1)
    new = probe_model(model, x, thresholds=Thresholds(tau=0.5, constant=0.1))
    assert old.to_dict() == new.to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Probe(model, thresholds=Thresholds(tau=0.5))  # no warning the new way


def test_levels_given_twice_or_of_the_wrong_type_are_refused():
    with pytest.raises(TypeError, match="put every level in the Thresholds"):
        Probe(relu_model(), thresholds=Thresholds(), tau=0.2)
    with pytest.raises(TypeError, match="thresholds must be a Thresholds"):
        Probe(relu_model(), thresholds={"tau": 0.2})


@pytest.mark.parametrize(
    "levels",
    [
        dict(tau=0.0),
        dict(tau=math.nan),
        dict(collapsed=0.1, collapsing=0.05),
        dict(collapsing=1.5),
        dict(constant=-1e-3),
        dict(constant=math.nan),
    ],
)
def test_invalid_levels(levels):
    with pytest.raises(ProbeError):
        Thresholds(**levels)


def test_thresholds_read_back_from_a_record():
    levels = Thresholds(tau=0.2, collapsed=0.01, collapsing=0.1, constant=0.5)
    assert Thresholds.from_dict(levels.to_dict()) == levels
    assert Thresholds.from_dict(json.loads(json.dumps(levels.to_dict()))) == levels
    assert Thresholds.from_dict(None) == Thresholds() == Thresholds.from_dict({})
    partial = Thresholds.from_dict({"collapsed": 0.02, "unknown": 3, "tau": None})
    assert partial == Thresholds(collapsed=0.02)


def test_every_default_level_comes_from_thresholds():
    defaults = Thresholds()
    assert inspect.signature(pieces_per_line).parameters["tau"].default == defaults.tau
    assert inspect.signature(SiteStatistics.add).parameters["tau"].default == defaults.tau
    from variability.reports.figures.training import variability_heatmap
    from variability.reports.glossary import GLOSSARY

    heatmap = inspect.signature(variability_heatmap).parameters["collapsed"]
    assert heatmap.default == defaults.collapsed
    assert f"({defaults.collapsed:g} by default)" in GLOSSARY["Collapsed / collapsing"]
    assert f"({defaults.collapsing:g} by default)" in GLOSSARY["Collapsed / collapsing"]
    assert f"({defaults.constant:g} by default)" in GLOSSARY["Constant units"]
