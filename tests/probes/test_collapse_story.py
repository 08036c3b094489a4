"""The C2C story of DEFINITIONS.md, on the checkerboard input grid at about 3,000 parameters.

Width 6 and 64 hidden layers: 3*6 + 63*(36+6) + 7 = 2,671 parameters. Weights Kaiming-normal,
biases PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)). ReLU networks map the whole grid to
one value for most seeds; the same networks with the absolute value do not.
"""

import torch
from torch import nn

from variability import probe_model
from variability.probes.activations import ABS, register_activation


class Abs(nn.Module):
    def forward(self, x):
        return x.abs()


register_activation(Abs, ABS)


def deep_narrow(activation: type[nn.Module], seed: int, width: int = 6, depth: int = 64):
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(2, width), activation()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), activation()]
    layers.append(nn.Linear(width, 1))
    model = nn.Sequential(*layers)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    return model


def checkerboard_grid() -> torch.Tensor:
    axis = -1 + torch.arange(81) / 40
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)


def test_parameter_count_is_about_3000():
    assert sum(p.numel() for p in deep_narrow(nn.ReLU, 0).parameters()) == 2671


def test_deep_relu_collapses_and_abs_does_not():
    grid = checkerboard_grid()
    relu_sites = {str(i) for i in range(1, 128, 2)}
    collapsed = 0
    for seed in range(10):
        results = probe_model(deep_narrow(nn.ReLU, seed), grid, redundancy=False)
        if results.network_collapsed:
            collapsed += 1
            first = results.first_collapsed_site
            assert first in relu_sites
            # the collapse starts there: every earlier site still varies
            names = results.site_names()
            assert all(s.status != "collapsed" for s in results.sites[: names.index(first)])
            assert results.output.variability <= 1e-3
    assert collapsed >= 8, f"only {collapsed} of 10 ReLU networks collapsed"

    for seed in range(10):
        results = probe_model(deep_narrow(Abs, seed), grid, redundancy=False)
        assert results.network_collapsed is False
        assert results.first_collapsed_site is None
        assert results.output.variability > 0.05
