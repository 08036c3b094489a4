"""Which layer made each site's input (probes/links.py), and the tap on pre-activations."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from variability import build_model
from variability.probes.links import MODEL_INPUT, site_links, site_tap


class Residual(nn.Module):
    """relu(bn(conv(x)) + x), the add in place as torchvision's ResNets write it."""

    def __init__(self, inplace_add: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.inplace_add = inplace_add

    def forward(self, x):
        out = self.bn(self.conv(x))
        if self.inplace_add:
            out += x
        else:
            out = x + out  # the skip first: the producer still comes from the other operand
        return F.relu(out)


class Shared(nn.Module):
    """One Linear applied twice, each time followed by a relu."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.layer(torch.relu(self.layer(x))))


class NoProducer(nn.Module):
    """The second relu's input is flipped: no layer made that tensor."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(2, 4)

    def forward(self, x):
        return torch.relu(torch.relu(self.first(x)).flip(-1))


def test_sequential_links_name_each_linear_and_what_it_reads():
    model = build_model("fc", 2, 1, 3, width=5, seed=0)
    links = site_links(model.eval(), torch.randn(8, 2))
    assert [(link.name, link.producer, link.input_from) for link in links] == [
        ("act1", "linear1", MODEL_INPUT),
        ("act2", "linear2", "act1"),
        ("act3", "linear3", "act2"),
    ]
    assert all(link.direct and link.producer_calls == 1 for link in links)
    assert all(link.units == 5 and link.unit_axis == 1 for link in links)
    assert all(isinstance(link.module, nn.ReLU) for link in links)


def test_lcw_layers_are_producers_through_register_layer():
    model = build_model("lcw", 2, 1, 3, width=4, seed=0)
    links = site_links(model.eval(), torch.randn(8, 2))
    assert [link.producer for link in links] == ["linear1", "lcw2", "lcw3"]


def test_residual_add_in_place_is_not_direct_but_keeps_the_producer():
    for inplace in (True, False):
        model = Residual(inplace).eval()
        (link,) = site_links(model, torch.randn(2, 3, 5, 5))
        assert link.producer == "bn"
        assert link.direct is False, inplace  # z is bn's output plus x, even in place
        assert link.unit_axis == 1 and link.units == 3


def test_shared_layer_counts_its_calls_and_missing_producer_is_none():
    first, second = site_links(Shared(), torch.randn(3, 4))
    assert (first.name, second.name) == ("relu[0]", "relu[1]")
    assert first.producer == second.producer == "layer"
    assert first.producer_calls == 2
    assert first.input_from is second.input_from is None  # it read the input, then relu[0]
    links = site_links(NoProducer(), torch.randn(3, 2))
    assert [link.producer for link in links] == ["first", None]
    assert links[1].direct is False


def test_tap_reads_in_place_preactivations_before_they_are_overwritten():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(inplace=True)).eval()
    x = torch.randn(16, 2)
    expected = model[0](x)
    seen = []
    with site_tap(model, lambda key, z: seen.append((key, z.clone()))), torch.no_grad():
        model(x)
    assert [key for key, _ in seen] == [("1", 0)]
    assert torch.equal(seen[0][1], expected.detach())
    assert bool((expected < 0).any())  # so an overwritten z would differ
