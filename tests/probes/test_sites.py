"""Finding probe sites: modules, in-place ops, functional calls, names, and the errors."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from variability import (
    Activation,
    NoProbeSitesError,
    Probe,
    ProbeError,
    probe_model,
    register_activation,
)


class Functional(nn.Module):
    """The hand model's twin with F.relu, plus a torch.abs and a Tensor.tanh call."""

    def __init__(self, hand: nn.Sequential) -> None:
        super().__init__()
        self.first, self.last = hand[0], hand[2]

    def forward(self, x):
        h = F.relu(self.first(x))
        y = self.last(h)
        return torch.abs(y).tanh()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x):
        return torch.relu(self.linear(x))


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(), Block()])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def test_functional_model_found_through_fx_with_the_same_figures(make_hand_model, hand_inputs):
    hand = make_hand_model()
    model = Functional(hand)
    forward_before = model.forward
    results = probe_model(model, hand_inputs)
    assert results.site_names() == ["relu", "abs", "tanh"]
    assert [s.source for s in results.sites] == ["function"] * 3
    reference = probe_model(hand, hand_inputs)["1"]
    site = results["relu"]
    assert site.variability == pytest.approx(reference.variability, rel=1e-9)
    assert site.activation_ratio == reference.activation_ratio
    assert site.activation_shift == pytest.approx(reference.activation_shift, rel=1e-9)
    # abs of y = 1, 0, 1, 2 is active where y != 0
    assert results["abs"].activation_ratio == pytest.approx(3 / 4)
    # the model is left exactly as it was
    assert "forward" not in model.__dict__ and model.forward == forward_before
    with torch.no_grad():
        expected = torch.abs(hand(hand_inputs)).tanh()
        assert torch.equal(model(hand_inputs), expected)


def test_functional_sites_are_named_by_their_module_path():
    results = probe_model(Nested(), torch.randn(20, 3))
    assert results.site_names() == ["blocks.0.relu", "blocks.1.relu"]


def test_sites_by_name_glob_and_predicate():
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 2))
    x = torch.randn(64, 3)
    assert probe_model(model, x, sites=["3"]).site_names() == ["3"]
    named = probe_model(model, x, sites="[0-9]")
    assert named.site_names() == ["0", "1", "2", "3", "4"]
    linear = named["0"]
    assert linear.kind == "Linear" and linear.activation_ratio is None
    assert named["1"].kind == "tanh" and named["1"].activation_ratio is not None
    chosen = probe_model(model, x, sites=lambda name, m: isinstance(m, nn.Linear))
    assert chosen.site_names() == ["0", "2", "4"]
    assert probe_model(Nested(), x, sites="blocks.*.relu").site_names() == [
        "blocks.0.relu",
        "blocks.1.relu",
    ]
    assert probe_model(model, x, sites=()).site_names() == []


def test_unknown_site_name_is_a_clear_error():
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    with pytest.raises(ProbeError, match="no module of Sequential is named like 'encoder'"):
        Probe(model, sites=["encoder"])


def test_no_site_is_a_clear_error_naming_what_was_looked_for():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    with pytest.raises(NoProbeSitesError) as info:
        probe_model(model, torch.randn(5, 3))
    message = str(info.value)
    assert "found no probe site in Sequential" in message
    assert "ReLU" in message and "relu" in message and "sites=" in message


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return F.relu(self.linear(x))
        return self.linear(x)


def test_data_dependent_control_flow_is_probed_as_it_runs():
    torch.manual_seed(0)
    model = Untraceable()
    x = torch.randn(64, 3).abs()  # x.sum() > 0: the relu branch runs
    results = probe_model(model, x)
    assert results.site_names() == ["relu"]
    with torch.no_grad():
        z = model.linear(x).double()
    assert results["relu"].activation_ratio == pytest.approx(float((z > 0).double().mean()))
    # and naming a module works
    results = probe_model(Untraceable(), torch.ones(4, 3), sites=["linear"])
    assert results.site_names() == ["linear"]


def test_a_module_used_at_several_depths_gives_one_site_per_call():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 4), nn.Linear(4, 3)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.b(self.act(self.a(x))))

    results = probe_model(Shared(), torch.randn(32, 2), batch_size=8)
    assert results.site_names() == ["act[0]", "act[1]"]
    assert [s.units for s in results.sites] == [4, 3]
    assert all(s.samples == 32 for s in results.sites)


def test_registered_activation_is_found():
    class Cube(nn.Module):
        def forward(self, x):
            return x**3

    register_activation(Cube, Activation("cube", lambda z, tau: z.abs() >= 0.5))
    model = nn.Sequential(nn.Identity(), Cube())
    results = probe_model(model, torch.tensor([[0.1], [0.6], [-0.7], [0.2]]))
    assert results["1"].kind == "cube"
    assert results["1"].activation_ratio == 0.5


def test_hooks_removed_and_the_callers_mode_kept_when_forward_raises():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    model.train()
    with pytest.raises(RuntimeError), Probe(model):
        model.eval()
        model(torch.randn(5, 7))  # wrong width: the Linear raises
    assert model.training is False  # the caller's choice, not the probe's to undo
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_functional_probe_restores_forward_when_forward_raises():
    model = Functional(nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1)))
    with pytest.raises(RuntimeError), Probe(model):
        model(torch.randn(5, 3))
    assert "forward" not in model.__dict__
    assert all(not m._forward_hooks for m in model.modules())


def test_gradient_rms_matches_autograd():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 1))
    x = torch.randn(40, 3)
    kept = {}

    def keep(module, inputs, output):
        output.retain_grad()
        kept["a"] = output

    model[1].register_forward_hook(keep)
    with Probe(model, gradients=True) as probe:
        model(x).pow(2).mean().backward()
    grad = kept["a"].grad
    expected = grad.pow(2).mean().sqrt().item()
    assert probe.results()["1"].gradient_rms == pytest.approx(expected, rel=1e-6)


def test_torch_export_program_is_probed_through_its_graph(tmp_path):
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)
            self.act = nn.ReLU()

        def forward(self, x):
            return torch.tanh(self.b(self.act(self.a(x))))

    model = Model()
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (torch.randn(4, 3),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, tmp_path / "model.pt2")
    loaded = torch.export.load(tmp_path / "model.pt2").module()
    x = torch.randn(40, 3)
    exported = probe_model(loaded, x, batch_size=16)
    # module names come from the program's module stack; the tanh call sits in the root forward
    assert exported.site_names() == ["act", "tanh"]
    direct = probe_model(model, x)
    assert exported["act"].variability == pytest.approx(direct["act"].variability, rel=1e-6)
    assert exported["act"].activation_ratio == direct["act"].activation_ratio
