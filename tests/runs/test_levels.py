"""The levels a run uses: the dead-unit level has one home (variability.probes.DEAD_LEVEL,
too_many_dead) and one comparison, so the Monitor's warning and the diagnosis flag a site at
exactly that level; the Monitor takes Thresholds and records them in run.json."""

import inspect
import json

import pytest
import torch
from torch import nn

from variability import Monitor
from variability.probes import (
    DEAD_LEVEL,
    ProbeResults,
    SiteResult,
    Thresholds,
    too_many_dead,
)
from variability.reports.diagnosis import diagnose
from variability.runs.events import PROBE_SET, EventLog
from variability.runs.trainer import TrainConfig


def results_with_dead_fraction(fraction: float) -> ProbeResults:
    site = SiteResult(
        name="act",
        kind="relu",
        source="module",
        depth=0,
        units=8,
        samples=100,
        variability=0.5,
        status=Thresholds().status(0.5),
        constant_units=0,
        constant_fraction=0.0,
        nonfinite=0,
        rms=1.0,
        activation_ratio=0.3,
        dead_units=round(8 * fraction),
        dead_fraction=fraction,
    )
    return ProbeResults((site,), None, Thresholds(), samples=100)


@pytest.mark.parametrize(
    ("fraction", "flagged"), [(0.5, True), (0.625, True), (0.375, False), (0.4999999, False)]
)
def test_the_warning_and_the_diagnosis_flag_the_same_sites(fraction, flagged):
    assert DEAD_LEVEL == 0.5
    assert too_many_dead(fraction) is flagged
    results = results_with_dead_fraction(fraction)
    events = EventLog(Thresholds(), DEAD_LEVEL).from_sites(7, {PROBE_SET: results}, PROBE_SET)
    assert [e.kind for e in events] == (["dead_units"] if flagged else [])
    assert [h.rule for h in diagnose(results)] == (["dead"] if flagged else [])
    if flagged:
        assert "warning from 50%" in events[0].message


def test_too_many_dead_needs_a_defined_fraction():
    assert too_many_dead(None) is False
    assert too_many_dead(0.2, level=0.2) is True and too_many_dead(0.19, level=0.2) is False


def test_the_monitor_and_the_trainer_default_to_that_level():
    assert inspect.signature(Monitor).parameters["dead_warning"].default == DEAD_LEVEL
    assert TrainConfig.dead_warning == DEAD_LEVEL


def test_the_monitor_takes_thresholds_and_records_them(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    levels = Thresholds(collapsed=0.2, collapsing=0.9, constant=0.01)
    monitor = Monitor(model, tmp_path / "run", every=1, thresholds=levels, quiet=True, warn=False)
    with monitor.step(0):
        model(torch.randn(16, 2))
    monitor.close()
    assert monitor.thresholds is levels
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert Thresholds.from_dict(info["monitor"]["thresholds"]) == levels
