"""Every figure of a tiny model with chosen weights, against values worked out by hand.

Model (conftest.hand_model): z = [x, -x, 0.5, -1], a = relu(z), output = a0 + a1; x = -1, 0, 1, 2.
  unit 0: z = -1, 0, 1, 2  -> a = 0, 0, 1, 2   active 2/4, mean 0.75, E[a^2] 1.25, var 0.6875
  unit 1: z = 1, 0, -1, -2 -> a = 1, 0, 0, 0   active 1/4, mean 0.25, E[a^2] 0.25, var 0.1875
  unit 2: z = 0.5 always   -> a = 0.5          active 4/4 (linear), constant
  unit 3: z = -1 always    -> a = 0            active 0/4 (dead), constant
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from variability import SCHEMA_VERSION, Probe, Thresholds, probe_model

# Each test runs with the compiled kernel and with PyTorch's reductions (conftest.reduction).
pytestmark = pytest.mark.usefixtures("reduction")

V_SITE = math.sqrt(0.875 / 1.75)
SHIFT = (2 * 0.5 / math.sqrt(1.5) + 1.0 + 1.0) / 4
CORR = 0.1875 / math.sqrt(0.6875 * 0.1875)
V_OUTPUT = math.sqrt(0.5 / 1.5)  # output 1, 0, 1, 2: mean 1, E[y^2] 1.5, var 0.5


def check_hand_site(site):
    assert site.units == 4 and site.samples == 4
    assert site.activation_ratio == pytest.approx(7 / 16)
    assert site.unit_activation_ratio.tolist() == [0.5, 0.25, 1.0, 0.0]
    assert (site.dead_units, site.linear_units) == (1, 1)
    assert site.dead_fraction == 0.25 and site.linear_fraction == 0.25
    assert site.variability == pytest.approx(V_SITE, rel=1e-6)
    assert site.constant_units == 2 and site.constant_fraction == 0.5
    assert site.activation_shift == pytest.approx(SHIFT, rel=1e-6)
    assert site.redundancy == pytest.approx(CORR, rel=1e-6)
    assert site.redundancy_units == 2
    assert site.rms == pytest.approx(math.sqrt(1.75 / 4), rel=1e-6)
    assert site.nonfinite == 0
    assert site.status == "healthy"


@pytest.mark.parametrize("inplace", [False, True])
def test_every_figure_by_hand(make_hand_model, hand_inputs, inplace):
    model = make_hand_model(inplace=inplace)
    with Probe(model) as probe, torch.no_grad():
        model(hand_inputs)
    results = probe.results()
    assert results.site_names() == ["1"]
    check_hand_site(results["1"])
    assert results.output.variability == pytest.approx(V_OUTPUT, rel=1e-6)
    assert results.network_collapsed is False
    assert results.first_collapsed_site is None
    assert results.samples == 4


def test_batches_give_the_hand_figures_too(make_hand_model, hand_inputs):
    results = probe_model(make_hand_model(), hand_inputs, batch_size=1)
    check_hand_site(results["1"])


def test_thresholds_are_echoed_and_change_the_verdict(make_hand_model, hand_inputs):
    results = probe_model(
        make_hand_model(), hand_inputs, thresholds=Thresholds(collapsed=0.6, collapsing=0.8)
    )
    assert results.thresholds.collapsed == 0.6 and results.thresholds.collapsing == 0.8
    assert results.output.status == "collapsed"  # V_OUTPUT = 0.577 <= 0.6
    assert results["1"].status == "collapsing"  # V_SITE = 0.707 in (0.6, 0.8]
    assert results.network_collapsed is True
    data = results.to_dict()
    assert data["thresholds"] == {
        "tau": 0.1, "collapsed": 0.6, "collapsing": 0.8, "constant": 1e-3, "dead": 0.5
    }  # fmt: skip


def test_a_constant_network_is_collapsed_with_v_exactly_zero(make_hand_model):
    model = make_hand_model()
    with torch.no_grad():
        model[0].weight.zero_()  # every unit now constant: z = b
    results = probe_model(model, torch.linspace(-3, 3, 50).reshape(-1, 1), batch_size=7)
    site = results["1"]
    assert site.variability == 0.0
    assert site.status == "collapsed"
    assert site.constant_units == 4
    assert results.output.variability == 0.0
    assert results.network_collapsed is True
    assert results.first_collapsed_site == "1"


def test_json_dict_and_pandas(make_hand_model, hand_inputs, tmp_path):
    results = probe_model(make_hand_model(), hand_inputs)
    path = tmp_path / "probe.json"
    results.to_json(path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["verdict"]["network_collapsed"] is False
    assert data["verdict"]["output_variability"] == pytest.approx(V_OUTPUT, rel=1e-6)
    assert data["sites"][0]["unit_activation_ratio"] == [0.5, 0.25, 1.0, 0.0]
    assert data["output"]["activation_ratio"] is None  # no activation at the output
    frame = results.to_pandas()
    assert list(frame.index) == ["1", "output"]  # indexed by site name
    assert frame.loc["1", "unit_activation_ratio_median"] == pytest.approx(0.375)
    assert frame["units"].dtype == "Int64" and frame.loc["output", "dead_units"] is pd.NA
    text = repr(results)
    assert "output" in text and "not collapsed" in text and "tau = 0.1" in text


def test_tau_moves_the_sigmoid_window():
    # sigmoid' = s(1 - s) >= tau / 4  <=>  |z| <= 3.637 for tau = 0.1, <= 1.317 for tau = 0.5
    z = torch.tensor([[0.0], [1.0], [2.0], [3.6], [3.7], [-3.6], [-5.0]])
    model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Sigmoid())
    assert probe_model(model, z)["1"].activation_ratio == pytest.approx(5 / 7)
    assert probe_model(model, z, thresholds=Thresholds(tau=0.5))[
        "1"
    ].activation_ratio == pytest.approx(2 / 7)


# --- each threshold exactly, through the probe (both reductions) ---------------------------------


@pytest.mark.parametrize("batch_size", [1, 2])
def test_v_exactly_at_a_collapse_level_is_at_that_level(batch_size):
    # One unit, values 1 and 7: mean 4, variance 9, E[a^2] 25, V = sqrt(9 / 25) = 0.6, and the
    # sums around the reference value (4, or 1 for a first batch of one row) are exact.
    model = nn.Sequential(nn.Identity())
    x = torch.tensor([[1.0], [7.0]])

    def probe(**levels):
        thresholds = Thresholds(**levels)
        return probe_model(model, x, batch_size=batch_size, sites=["0"], thresholds=thresholds)

    assert probe()["0"].variability == 0.6
    at_collapsed = probe(collapsed=0.6, collapsing=0.8)
    assert at_collapsed["0"].status == "collapsed"
    assert at_collapsed.network_collapsed is True  # the output is the same values
    assert at_collapsed.first_collapsed_site == "0"
    at_collapsing = probe(collapsed=0.5, collapsing=0.6)
    assert at_collapsing["0"].status == "collapsing"
    assert at_collapsing.first_collapsing_site == "0"
    assert at_collapsing.network_collapsed is False
    below = float(np.nextafter(0.6, 0.0))
    assert probe(collapsed=below, collapsing=0.8)["0"].status == "collapsing"
    assert probe(collapsed=0.5, collapsing=below)["0"].status == "healthy"


def test_a_unit_whose_std_is_exactly_the_constant_tolerance_is_constant():
    # unit 0 is 1 and 1 (std 0), unit 1 is -1 and 1 (std 1); both E[a^2] = 1, so RMS = 1 and
    # with constant=1 unit 1's std is exactly constant * RMS
    model = nn.Sequential(nn.Identity())
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    site = probe_model(model, x, sites=["0"], thresholds=Thresholds(constant=1.0))["0"]
    assert site.rms == 1.0
    assert site.constant_units == 2 and site.constant_fraction == 1.0
    assert site.redundancy_units == 0  # constant units are left out of the redundancy
    below = Thresholds(constant=float(np.nextafter(1.0, 0.0)))
    site = probe_model(model, x, sites=["0"], thresholds=below)["0"]
    assert site.constant_units == 1
    assert site.redundancy_units == 1


def test_an_all_zero_site_is_dead_constant_and_collapsed():
    # every pre-activation is -1, so every ReLU output is 0: std 0 and RMS 0 (0 <= 1e-3 * 0)
    first = nn.Linear(2, 3)
    with torch.no_grad():
        first.weight.zero_()
        first.bias.fill_(-1.0)
    model = nn.Sequential(first, nn.ReLU(), nn.Linear(3, 1))
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    results = probe_model(model, x, batch_size=7)
    site = results["1"]
    assert (site.units, site.samples) == (3, 50)
    assert site.variability == 0.0 and site.rms == 0.0
    assert site.status == "collapsed"
    assert site.constant_units == 3 and site.constant_fraction == 1.0
    assert site.dead_units == 3 and site.dead_fraction == 1.0
    assert site.linear_units == 0
    assert site.activation_ratio == 0.0
    assert site.unit_activation_ratio.tolist() == [0.0, 0.0, 0.0]
    assert site.redundancy is None and site.redundancy_units == 0
    assert results.first_collapsed_site == "1"


def test_tau_exactly_at_the_leaky_slope_makes_the_negative_side_active():
    # LeakyReLU(0.1): |phi'| is 0.1 for z < 0, 1 above. Active where |phi'| >= tau * 1: with
    # tau = 0.1 exactly, everywhere (AR 1, a linear unit); just above 0.1, only z > 0.
    model = nn.Sequential(nn.Identity(), nn.LeakyReLU(0.1))
    z = torch.tensor([[-1.0], [0.0], [2.0], [-3.0]])
    at = probe_model(model, z, thresholds=Thresholds(tau=0.1))["1"]
    assert at.activation_ratio == 1.0 and at.linear_units == 1
    above_tau = Thresholds(tau=float(np.nextafter(0.1, 1.0)))
    above = probe_model(model, z, thresholds=above_tau)["1"]
    assert above.activation_ratio == 0.25 and above.linear_units == 0 and above.dead_units == 0
