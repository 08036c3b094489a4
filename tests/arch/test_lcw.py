"""LCW: the zero-sum basis, rows that stay zero-sum under training, and the activation shift."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from variability.arch import LCWLinear, build_model, zero_sum_basis


def activation_shift(z: torch.Tensor) -> float:
    """DEFINITIONS.md: mean over units of |E[z_j]| / sqrt(E[z_j^2]), z of shape (samples, units)."""
    mean = z.mean(dim=0)
    rms = z.pow(2).mean(dim=0).sqrt()
    return (mean.abs() / rms).mean().item()


def test_activation_shift_helper_on_hand_values():
    z = torch.tensor([[1.0, 1.0], [3.0, -1.0]])  # unit 0: mean 2, rms sqrt(5); unit 1: mean 0
    assert activation_shift(z) == pytest.approx((2 / math.sqrt(5) + 0) / 2)


def test_basis_hand_values_for_three_inputs():
    basis = zero_sum_basis(3, torch.float64)
    expected = torch.tensor(
        [
            [1 / math.sqrt(2), 1 / math.sqrt(6)],
            [-1 / math.sqrt(2), 1 / math.sqrt(6)],
            [0.0, -2 / math.sqrt(6)],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(basis, expected)


@pytest.mark.parametrize("m", [2, 3, 10, 257])
def test_basis_is_orthonormal_and_orthogonal_to_ones(m):
    basis = zero_sum_basis(m, torch.float64)
    assert basis.shape == (m, m - 1)
    torch.testing.assert_close(basis.T @ basis, torch.eye(m - 1, dtype=torch.float64))
    assert basis.sum(dim=0).abs().max().item() < 1e-12
    # B B^T is the projection onto the complement of the ones vector.
    projection = torch.eye(m, dtype=torch.float64) - 1.0 / m
    torch.testing.assert_close(basis @ basis.T, projection)


def test_basis_is_a_non_persistent_buffer():
    layer = LCWLinear(5, 3)
    assert "basis" in dict(layer.named_buffers())
    assert "basis" not in layer.state_dict()
    assert sorted(name for name, _ in layer.named_parameters()) == ["bias", "v"]


def test_parameter_count_and_shapes():
    layer = LCWLinear(7, 4)
    assert layer.v.shape == (4, 6)
    assert layer.weight.shape == (4, 7)
    assert sum(p.numel() for p in layer.parameters()) == 4 * 6 + 4


def test_forward_uses_effective_weight():
    torch.manual_seed(0)
    layer = LCWLinear(6, 3)
    with torch.no_grad():
        layer.bias.uniform_(-1, 1)
    x = torch.randn(10, 6)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias)


def test_in_features_must_allow_a_zero_sum_row():
    with pytest.raises(ValueError, match="in_features >= 2"):
        LCWLinear(1, 3)


def test_initial_row_norms_match_gain():
    gain = 4.0
    layer = LCWLinear(200, 3000, gain=gain, generator=torch.Generator().manual_seed(1))
    squared = layer.weight.detach().pow(2).sum(dim=1)
    assert squared.mean().item() == pytest.approx(gain**2, rel=0.02)
    entry_variance = layer.weight.detach().var().item()
    assert entry_variance == pytest.approx(gain**2 / 200, rel=0.02)
    assert torch.equal(layer.bias.detach(), torch.zeros(3000))


@pytest.mark.parametrize(
    "make_optimiser",
    [
        lambda params: torch.optim.SGD(params, lr=0.5, momentum=0.9),
        lambda params: torch.optim.Adam(params, lr=0.05),
        lambda params: torch.optim.AdamW(params, lr=0.05, weight_decay=0.1),
    ],
    ids=["sgd", "adam", "adamw"],
)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
def test_rows_sum_to_zero_before_and_after_training(make_optimiser, dtype, tol):
    torch.manual_seed(2)
    layer = LCWLinear(32, 16, gain=4.0).to(dtype)  # the sigmoid scale LCW models use
    before = layer.weight.detach().clone()
    assert before.sum(dim=1).abs().max().item() < tol
    optimiser = make_optimiser(layer.parameters())
    x = torch.sigmoid(torch.randn(64, 32, dtype=dtype))
    target = torch.randn(64, 16, dtype=dtype)
    for _ in range(25):
        optimiser.zero_grad()
        loss = (layer(x) - target).pow(2).mean()
        loss.backward()
        optimiser.step()
    after = layer.weight.detach()
    assert (after - before).abs().max().item() > 0.05  # the optimiser did move the weights
    assert after.sum(dim=1).abs().max().item() < tol


def test_activation_shift_far_below_plain_layer():
    # Sigmoid outputs share a mean near 1/2, so a plain layer's pre-activations are shifted by
    # w . E[a] per unit; zero-sum rows cancel the shared mean.
    generator = torch.Generator().manual_seed(3)
    width = 128
    a = torch.sigmoid(torch.randn(20_000, width, generator=generator))
    lcw = LCWLinear(width, width, gain=4.0, generator=generator)
    plain = nn.Linear(width, width, bias=False)
    with torch.no_grad():
        plain.weight.normal_(0.0, 4.0 / math.sqrt(width), generator=generator)
    with torch.no_grad():
        lcw_shift = activation_shift(lcw(a))
        plain_shift = activation_shift(plain(a))
    assert plain_shift > 0.5
    assert lcw_shift < 0.05
    assert lcw_shift < plain_shift / 20


def test_lcw_model_constrains_every_hidden_to_hidden_layer_only():
    model = build_model("lcw", d_in=3, d_out=2, depth=4, width=10, seed=0)
    constrained = [name for name, m in model.named_children() if isinstance(m, LCWLinear)]
    assert constrained == ["lcw2", "lcw3", "lcw4"]
    assert type(model.linear1) is nn.Linear and type(model.out) is nn.Linear
    for name in constrained:
        rows = getattr(model, name).weight.sum(dim=1)
        assert rows.abs().max().item() < 1e-6
    assert isinstance(model.act1, nn.Sigmoid)


def test_dtype_change_rebuilds_the_basis_exactly():
    layer = LCWLinear(9, 2).double()
    assert layer.basis.dtype == torch.float64
    torch.testing.assert_close(layer.basis, zero_sum_basis(9, torch.float64), rtol=0, atol=0)
    assert "basis" not in layer.state_dict()
