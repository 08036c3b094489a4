"""V3 and pieces per line against closed forms."""

import numpy as np
import pytest
import torch
from torch import nn

from variability import Abs, HanLayer, ProbeError, pieces_per_line, v3
from variability.probes.landscape import grid_points, third_difference_measure


class Polynomial(nn.Module):
    """f(x) = x0^3 + x1 (with an unused Linear so the input size can be read)."""

    def __init__(self) -> None:
        super().__init__()
        self.shape = nn.Linear(2, 1)

    def forward(self, x):
        return (x[:, :1] ** 3 + x[:, 1:2]).double()


def test_v3_of_a_cubic_matches_the_closed_form():
    # third forward difference of x^3 with step h is 6 h^3 everywhere; along x1 it is 0
    grid = 81
    h = 2 / (grid - 1)
    points = grid_points(2, grid, -1.0, 1.0)
    values = points[:, 0] ** 3 + points[:, 1]
    std = values.std(unbiased=False).item()
    expected = (6 * h**3 / std + 0.0) / 2
    assert v3(Polynomial().double()) == pytest.approx(expected, rel=1e-9)


def test_v3_is_zero_for_a_constant_network_and_for_a_linear_one():
    constant = nn.Linear(2, 1)
    with torch.no_grad():
        constant.weight.zero_()
    assert v3(constant) == 0.0
    assert v3(nn.Linear(3, 2).double(), grid=21) == pytest.approx(0.0, abs=1e-9)


def test_v3_needs_low_dimensional_inputs():
    with pytest.raises(ProbeError, match="1 to 3 dimensions"):
        v3(nn.Linear(4, 1))


def test_third_difference_measure_by_hand():
    values = np.array([0.0, 0.0, 0.0, 1.0, 0.0]).reshape(5, 1)
    mean, std = 0.2, 0.4
    standard = (values[:, 0] - mean) / std
    expected = np.abs(np.diff(standard, n=3)).mean()  # diffs: (1-0)/0.4 ... computed directly
    assert third_difference_measure(values) == pytest.approx(expected)
    assert expected == pytest.approx((2.5 + 7.5) / 2)


def kinked(kinks: list[float]) -> nn.Sequential:
    """f(x) = sum_i relu(x - k_i): its activation pattern changes exactly at each kink."""
    first = nn.Linear(1, len(kinks))
    with torch.no_grad():
        first.weight.fill_(1.0)
        first.bias.copy_(-torch.tensor(kinks))
    return nn.Sequential(first, nn.ReLU(), nn.Linear(len(kinks), 1))


def test_pieces_per_line_counts_the_kinks_crossed():
    model = kinked([-0.55, -0.1, 0.3, 0.71, 1.5])  # four kinks inside (-1, 1), one outside
    ends = torch.tensor([[-1.0], [1.0]])
    pieces = pieces_per_line(model, ends, lines=3, points=1000)
    assert pieces.per_line.tolist() == [5, 5, 5]
    assert pieces.mean == 5.0 and pieces.std == 0.0


def kinked_abs(kinks: list[float]) -> nn.Module:
    """f(x) = sum_k |x - k|: a kink at every k, though |.| is active on both sides of each."""
    model = kinked(kinks)
    model[1] = Abs()
    return model


def test_pieces_per_line_counts_the_kinks_of_the_absolute_value():
    model = kinked_abs([-0.55, -0.1, 0.3, 0.71, 1.5])
    ends = torch.tensor([[-1.0], [1.0]])
    assert pieces_per_line(model, ends, lines=2, points=1000).per_line.tolist() == [5, 5]


def test_pieces_per_line_counts_the_kinks_of_han_layers():
    """One Han layer of width 1 on a scalar: |x - 2 x + b| = |b - x|, one kink at x = b."""
    han = HanLayer(1)
    with torch.no_grad():
        han.u.fill_(1.0)
        han.b.fill_(0.25)
    model = nn.Sequential(han, nn.Linear(1, 1))
    ends = torch.tensor([[-1.0], [1.0]])
    assert pieces_per_line(model, ends, lines=1, points=500).per_line.tolist() == [2]


def test_pieces_per_line_needs_two_inputs():
    with pytest.raises(ProbeError, match="at least two"):
        pieces_per_line(kinked([0.0]), torch.zeros(1, 1))
