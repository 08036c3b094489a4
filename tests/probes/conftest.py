"""Small models with chosen weights, shared by the probe tests."""

import pytest
import torch
from torch import nn


def hand_model(inplace: bool = False) -> nn.Sequential:
    """Linear(1 -> 4) with W = [1, -1, 0, 0], b = [0, 0, 0.5, -1], ReLU, Linear(4 -> 1) = a0 + a1.

    On inputs x = [-1, 0, 1, 2] every figure is worked out by hand in test_probe_figures.py.
    """
    first = nn.Linear(1, 4)
    last = nn.Linear(4, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [-1.0], [0.0], [0.0]]))
        first.bias.copy_(torch.tensor([0.0, 0.0, 0.5, -1.0]))
        last.weight.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
        last.bias.zero_()
    return nn.Sequential(first, nn.ReLU(inplace=inplace), last)


@pytest.fixture
def make_hand_model():
    return hand_model


@pytest.fixture
def hand_inputs() -> torch.Tensor:
    return torch.tensor([[-1.0], [0.0], [1.0], [2.0]])


@pytest.fixture(params=["compiled", "pytorch"])
def reduction(request, monkeypatch):
    """Run a test once with the compiled kernel (probes/kernels.py) and once with PyTorch ops."""
    from variability.probes import kernels

    if request.param == "compiled" and kernels.compiled() is None:
        pytest.fail("numba does not import: it is a dependency of the package")
    monkeypatch.setattr(kernels, "ENABLED", request.param == "compiled")
    return request.param
