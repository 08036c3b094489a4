"""Small models and helpers shared by the run tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def hook_count(model: nn.Module) -> int:
    """Every forward, pre-forward and backward hook on the model and its submodules."""
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def hand_model() -> nn.Sequential:
    """Linear(1 -> 2) with W = [1, 2], b = 0, ReLU, Linear(2 -> 1) with W = [3, -1], b = 0.

    On inputs x = [1, 2, -1] with targets 0 and the MSE loss, test_monitor.py works every
    recorded figure out by hand.
    """
    first, last = nn.Linear(1, 2), nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [2.0]]))
        first.bias.zero_()
        last.weight.copy_(torch.tensor([[3.0, -1.0]]))
        last.bias.zero_()
    return nn.Sequential(first, nn.ReLU(), last)


def small_mlp(seed: int = 0, width: int = 8, depth: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(2 if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


@pytest.fixture(name="hook_count")
def hook_count_fixture():
    return hook_count


@pytest.fixture(name="hand_model")
def hand_model_fixture():
    return hand_model


@pytest.fixture(name="small_mlp")
def small_mlp_fixture():
    return small_mlp


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 2, generator=generator) * 2 - 1
    return x, (x[:, :1] * x[:, 1:] > 0).float()
