"""The train/eval mode: a Probe never changes it, so it never sets it back either;
probe_model sets eval mode for its passes and restores the mode it found."""

import pytest
import torch
from torch import nn

from variability import Probe, probe_model


def model_in(training: bool) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))
    return model.train(training)


def modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


@pytest.mark.parametrize("training", [True, False])
def test_a_mode_set_inside_the_block_is_kept(training):
    # On main, detach set the mode of entry back: after `with Probe(m): m.eval()`, m was
    # training again.
    model = model_in(training)
    with Probe(model), torch.no_grad():
        model.train(not training)
        model(torch.randn(8, 3))
    assert modes(model) == [not training] * len(modes(model))


def test_a_submodule_mode_set_inside_the_block_is_kept():
    model = model_in(True)
    with Probe(model), torch.no_grad():
        model[1].eval()  # freeze the batch norm's statistics
        model(torch.randn(8, 3))
    assert modes(model) == [True, True, False, True, True]


@pytest.mark.parametrize("training", [True, False])
def test_the_probe_itself_leaves_the_mode_as_it_was(training):
    model = model_in(training)
    model[1].train(not training)  # mixed modes survive too
    before = modes(model)
    probe = Probe(model).attach()
    assert modes(model) == before
    with torch.no_grad():
        model(torch.randn(8, 3))
    probe.detach()
    probe.detach()  # twice is safe
    assert modes(model) == before


def test_probe_model_restores_the_mode_it_changed():
    model = model_in(True)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    probe_model(model, torch.randn(10, 3), batch_size=4)
    assert seen == [False, False, False]  # eval mode for its passes
    assert model.training is True
    with pytest.raises(RuntimeError):
        probe_model(model, torch.randn(10, 5))  # wrong width: the Linear raises
    assert model.training is True
