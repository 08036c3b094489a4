"""The layer adapters touch exactly the units they are told to, and put everything back."""

from __future__ import annotations

import torch
from torch import nn

from variability import LCWLinear
from variability.remedy.layers import LCWLayer, NormLayer, RowLayer, Saved, layer_for


def test_only_the_listed_units_change_and_restore_puts_them_back():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    weight, bias = conv.weight.detach().clone(), conv.bias.detach().clone()
    saved = Saved()
    layer = layer_for("conv", conv, saved)
    assert isinstance(layer, RowLayer) and layer.units == 4
    alpha = torch.full((4,), 2.0, dtype=torch.float64)
    beta = torch.arange(4, dtype=torch.float64)
    layer.scale(alpha, torch.tensor([1, 3]))
    layer.set_bias(beta, torch.tensor([3]))
    for unit in (0, 2):  # untouched filters: bit-identical
        assert torch.equal(conv.weight[unit], weight[unit])
    for unit in (1, 3):
        assert torch.equal(conv.weight[unit], weight[unit] * 2)
    assert torch.equal(conv.bias[:3], bias[:3]) and conv.bias[3].item() == 3.0
    assert saved.names == ["conv.weight", "conv.bias"]
    saved.restore()
    assert torch.equal(conv.weight, weight) and torch.equal(conv.bias, bias)


def test_centring_and_lcw_rows():
    torch.manual_seed(1)
    linear = nn.Linear(5, 3)
    before = linear.weight.detach().clone()
    layer = layer_for("l", linear, Saved())
    layer.centre(torch.tensor([0, 2]))
    assert torch.allclose(linear.weight[[0, 2]].sum(dim=1), torch.zeros(2), atol=1e-6)
    assert torch.equal(linear.weight[1], before[1])
    lcw = LCWLinear(5, 3)
    adapter = layer_for("lcw", lcw, Saved())
    assert isinstance(adapter, LCWLayer)
    rows = lcw.weight.detach().clone()
    adapter.scale(torch.tensor([3.0, 1.0, 1.0], dtype=torch.float64), torch.tensor([0]))
    assert torch.allclose(lcw.weight[0], 3 * rows[0], atol=1e-6)
    assert torch.equal(lcw.weight[1:], rows[1:])
    assert lcw.weight.sum(dim=1).abs().max() < 1e-6


def test_norms_and_refusals():
    assert isinstance(layer_for("bn", nn.BatchNorm2d(4), Saved()), NormLayer)
    assert isinstance(layer_for("ln", nn.LayerNorm(4), Saved()), NormLayer)
    assert "affine=False" in layer_for("bn", nn.BatchNorm1d(4, affine=False), Saved())
    assert "several axes" in layer_for("ln", nn.LayerNorm((2, 3)), Saved())
    assert "transposed" in layer_for("t", nn.ConvTranspose2d(2, 2, 3), Saved())
    assert "no weights the remedy rescales" in layer_for("p", nn.MaxPool2d(2), Saved())
