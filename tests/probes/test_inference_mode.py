"""A model run under ``torch.inference_mode()`` is probed like one run under ``no_grad``.

The hooks make and update the statistics outside inference mode, so they remain ordinary tensors:
results can be read after the block, and batches with and without inference mode mix.
"""

import pytest
import torch
from torch import nn

from variability import Probe

pytestmark = pytest.mark.usefixtures("reduction")  # compiled kernel and PyTorch operations


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(inplace=True), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 2)
    )


def test_inference_mode_gives_the_figures_of_no_grad():
    net = model()
    batches = torch.randn(3, 90, 4).unbind(0)
    reference = Probe(net)
    with reference, torch.no_grad():
        for x in batches:
            net(x)
    mixed = Probe(net)
    for i, x in enumerate(batches):
        if i == 1:
            with mixed, torch.no_grad():
                net(x)
        else:
            with mixed, torch.inference_mode():
                net(x)
    assert mixed.results().to_dict() == reference.results().to_dict()
    assert mixed.results().samples == 270
    mixed.reset()  # statistics made in inference mode are cleared and reused outside it
    with mixed, torch.no_grad():
        net(batches[0])
    assert mixed.results().samples == 90
