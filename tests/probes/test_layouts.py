"""Units and samples for conv and sequence tensors, and NaN handling, against direct formulas."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from variability import Probe, probe_model


def direct_figures(a: np.ndarray, z: np.ndarray) -> dict:
    """Figures of a (samples, units) matrix, computed straight from the definitions."""
    var = a.var(axis=0)
    msq = (a**2).mean(axis=0)
    active = z > 0
    unit_ratio = active.mean(axis=0)
    shift = np.mean(np.abs(z.mean(axis=0)) / np.sqrt((z**2).mean(axis=0)))
    return {
        "variability": math.sqrt(var.sum() / msq.sum()),
        "activation_ratio": active.mean(),
        "dead_units": int((unit_ratio == 0).sum()),
        "activation_shift": shift,
    }


def assert_matches(site, expected):
    assert site.variability == pytest.approx(expected["variability"], rel=1e-5)
    assert site.activation_ratio == pytest.approx(expected["activation_ratio"], rel=1e-9)
    assert site.dead_units == expected["dead_units"]
    assert site.activation_shift == pytest.approx(expected["activation_shift"], rel=1e-5)


def test_conv2d_channels_are_the_units():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))
    x = torch.randn(16, 3, 8, 8)
    results = probe_model(model, x, batch_size=5)
    site = results["1"]
    assert site.units == 5 and site.samples == 16 * 8 * 8
    with torch.no_grad():
        z = conv(x).permute(0, 2, 3, 1).reshape(-1, 5).double().numpy()
    assert_matches(site, direct_figures(np.maximum(z, 0), z))


def test_sequence_features_are_the_units():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))  # applied per position
    x = torch.randn(10, 7, 4)  # (N, T, F)
    site = probe_model(model, x, batch_size=3)["1"]
    assert site.units == 6 and site.samples == 70
    with torch.no_grad():
        z = model[0](x).reshape(-1, 6).double().numpy()
    assert_matches(site, direct_figures(np.maximum(z, 0), z))


def test_conv1d_models_read_three_axes_as_channels():
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU())
    site = probe_model(model, torch.randn(5, 2, 9))["1"]
    assert site.units == 4 and site.samples == 5 * 7


def test_unit_axis_can_be_chosen():
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    site = probe_model(model, torch.randn(5, 2, 9), unit_axis=1)["1"]
    assert site.units == 2 and site.samples == 45


def test_nan_inputs_are_counted_and_left_out():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2))
    clean = torch.randn(50, 3)
    dirty = torch.cat([clean[:20], torch.full((2, 3), float("nan")), clean[20:]])
    dirty[5, 1] = float("nan")  # one more bad row, NaN in one input only
    results = probe_model(model, dirty, batch_size=8)
    keep = torch.ones(52, dtype=torch.bool)
    keep[[5, 20, 21]] = False
    reference = probe_model(model, dirty[keep], batch_size=8)
    site, ref = results["1"], reference["1"]
    # three bad rows reach 6 pre-activations and 6 activations each
    assert site.nonfinite == 3 * 6 * 2
    assert results.output.nonfinite == 3 * 2
    assert site.samples == 49
    assert site.variability == pytest.approx(ref.variability, rel=1e-6)
    assert site.activation_ratio == pytest.approx(ref.activation_ratio, rel=1e-12)
    assert site.activation_shift == pytest.approx(ref.activation_shift, rel=1e-6)
    assert site.redundancy == pytest.approx(ref.redundancy, rel=1e-5)
    assert results.output.variability == pytest.approx(reference.output.variability, rel=1e-6)


def test_a_site_that_changes_width_is_a_clear_error():
    model = nn.Sequential(nn.Identity(), nn.ReLU())
    with pytest.raises(ValueError, match="had 3 units and now has 4"), Probe(model):
        model(torch.randn(2, 3))
        model(torch.randn(2, 4))
