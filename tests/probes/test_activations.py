"""Each known activation's 'active' rule against |phi'(z)| >= tau * max|phi'| from autograd."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from variability.probes.activations import (
    activation_for_call,
    activation_for_module,
    sigmoid_half_width,
    tanh_half_width,
)

MODULES = [
    nn.ReLU(),
    nn.LeakyReLU(0.01),
    nn.LeakyReLU(0.5),
    nn.ReLU6(),
    nn.ELU(),
    nn.ELU(alpha=2.0),
    nn.SELU(),
    nn.CELU(alpha=0.5),
    nn.GELU(),
    nn.GELU(approximate="tanh"),
    nn.SiLU(),
    nn.Mish(),
    nn.Softplus(beta=2.0),
    nn.Sigmoid(),
    nn.Tanh(),
    nn.Hardtanh(-2.0, 1.0),
    nn.Hardswish(),
    nn.Hardsigmoid(),
]


def slope(module: nn.Module, z: torch.Tensor) -> torch.Tensor:
    z = z.clone().requires_grad_(True)
    module(z).sum().backward()
    return z.grad.abs()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: repr(m))
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5])
def test_rule_matches_the_derivative(module, tau):
    peak = slope(module, torch.linspace(-30, 30, 600_001, dtype=torch.float64)).max()
    z = torch.randn(20_000, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 6
    expected = slope(module, z) >= tau * peak
    # points within 1e-6 of the boundary may fall either way by rounding; leave them out
    margin = (slope(module, z) - tau * peak).abs() > 1e-6
    got = activation_for_module(module).active(z, tau)
    assert torch.equal(got[margin], expected[margin])


def test_prelu_uses_its_learned_slope_per_channel():
    module = nn.PReLU(num_parameters=2)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([0.01, 0.5]))
    z = torch.tensor([[-1.0, -1.0], [1.0, 1.0]])
    active = activation_for_module(module).active(z, 0.1)
    assert active.tolist() == [[False, True], [True, True]]


def test_closed_form_windows():
    assert sigmoid_half_width(0.1) == pytest.approx(3.6369, abs=1e-4)
    assert tanh_half_width(0.1) == pytest.approx(1.8184, abs=1e-4)


def test_functional_rules_read_their_arguments():
    act, inplace = activation_for_call("call_function", F.leaky_relu, (None, 0.5), {})
    assert act.active(torch.tensor([-1.0]), 0.1).item() is True and inplace is False
    act, inplace = activation_for_call("call_function", F.relu, (None,), {"inplace": True})
    assert inplace is True
    act, inplace = activation_for_call("call_method", "relu_", (None,), {})
    assert inplace is True
    assert activation_for_call("call_function", torch.add, (None, None), {}) is None


def test_count_from_output_agrees_with_the_rule():
    z = torch.randn(1000)
    z[::7] = 0.0
    for module in (nn.ReLU(),):
        act = activation_for_module(module)
        assert torch.equal(act.count_from_output(module(z)).bool(), act.active(z, 0.1))
    abs_rule = activation_for_call("call_function", torch.abs, (None,), {})[0]
    assert torch.equal(abs_rule.count_from_output(z.abs()).bool(), abs_rule.active(z, 0.1))
