"""The Gaussian moments AutoInit-style tracking uses, against closed forms."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from variability.remedy.gaussian import gaussian_moments


@pytest.mark.parametrize("std", [0.3, 1.0, 2.5])
def test_relu_moments_match_the_closed_form(std):
    mean, square = gaussian_moments(torch.relu, 0.0, std, torch.float64)
    assert mean == pytest.approx(std / math.sqrt(2 * math.pi), rel=1e-7)
    assert square == pytest.approx(std * std / 2, rel=1e-7)


def test_shifted_input_and_other_activations():
    # E[z] and E[z^2] of the identity are the Gaussian's own moments
    mean, square = gaussian_moments(lambda z: z, 0.7, 1.3, torch.float64)
    assert (mean, square) == (pytest.approx(0.7), pytest.approx(0.7**2 + 1.3**2))
    # tanh is odd: mean 0 for a centred input; |z| has E = s sqrt(2/pi)
    assert gaussian_moments(nn.Tanh().forward, 0.0, 1.0)[0] == pytest.approx(0.0, abs=1e-7)
    assert gaussian_moments(torch.abs, 0.0, 2.0, torch.float64)[0] == pytest.approx(
        2.0 * math.sqrt(2 / math.pi), rel=1e-7
    )
