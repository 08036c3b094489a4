"""Sites found while the model runs: names, in-place calls, unit axes, what is not measured,
and a clean state after an exception."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from variability import NoProbeSitesError, Probe, ProbeError, probe_model
from variability.probes.state import ProbeState


class TwoCalls(nn.Module):
    """Two torch.relu calls in one forward, in a module with submodules."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 5), nn.Linear(5, 4)

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))))


class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([TwoCalls(), TwoCalls()])
        self.blocks[1].a = nn.Linear(4, 5)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def test_two_calls_in_one_forward_have_two_names_per_module():
    torch.manual_seed(0)
    results = probe_model(Blocks(), torch.randn(50, 3))
    assert results.site_names() == [
        "blocks.0.relu[0]",
        "blocks.0.relu[1]",
        "blocks.1.relu[0]",
        "blocks.1.relu[1]",
    ]
    assert [s.units for s in results.sites] == [5, 4, 5, 4]


def test_merging_two_halves_equals_probing_the_whole():
    torch.manual_seed(0)
    model = TwoCalls().double()
    x = torch.randn(400, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    states = []
    for half in x.split(200):
        with Probe(model) as probe, torch.no_grad():
            model(half)
        states.append(probe.state())
    merged = states[0].merged(states[1]).results()
    whole = probe_model(model, x)
    assert merged.site_names() == whole.site_names() == ["relu[0]", "relu[1]"]
    for mine, theirs in zip(merged.sites, whole.sites, strict=True):
        for figure in ("variability", "activation_ratio", "activation_shift", "redundancy"):
            assert getattr(mine, figure) == pytest.approx(getattr(theirs, figure), rel=1e-9)
        assert mine.samples == theirs.samples == 400
    # the two calls stayed two sites: merging did not fold them into one
    assert merged["relu[0]"].units == 5 and merged["relu[1]"].units == 4


class InPlace(nn.Module):
    """Every in-place form: z must be read before the op overwrites it."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.linear = nn.Linear(3, 6)

    def forward(self, x):
        h = self.linear(x)
        if self.form == "torch.relu_":
            return torch.relu_(h)
        if self.form == "Tensor.relu_":
            return h.relu_()
        if self.form == "F.relu(inplace=True)":
            return F.relu(h, inplace=True)
        if self.form == "F.leaky_relu_":
            return F.leaky_relu_(h, 0.01)
        if self.form == "Tensor.sigmoid_":
            return h.sigmoid_()
        raise AssertionError(self.form)


@pytest.mark.parametrize(
    "form",
    ["torch.relu_", "Tensor.relu_", "F.relu(inplace=True)", "F.leaky_relu_", "Tensor.sigmoid_"],
)
def test_in_place_calls_read_z_before_it_is_overwritten(form):
    torch.manual_seed(0)
    model = InPlace(form)
    x = torch.randn(500, 3)
    results = probe_model(model, x, batch_size=128)
    [site] = results.sites
    with torch.no_grad():
        z = model.linear(x).double().numpy()
    if form == "Tensor.sigmoid_":
        a = 1.0 / (1.0 + np.exp(-z))
        active = np.abs(z) <= math.log((1 + math.sqrt(0.9)) / (1 - math.sqrt(0.9)))
    else:
        a = np.where(z > 0, z, 0.01 * z if form == "F.leaky_relu_" else 0.0)
        active = z > 0
    assert site.activation_ratio == pytest.approx(active.mean(), abs=1e-12)
    shift = np.mean(np.abs(z.mean(0)) / np.sqrt((z**2).mean(0)))
    assert site.activation_shift == pytest.approx(shift, rel=1e-5)
    v = math.sqrt(a.var(0).sum() / (a**2).mean(0).sum())
    assert site.variability == pytest.approx(v, rel=1e-5)


def test_hooks_and_the_function_mode_are_gone_after_an_exception():
    model = Blocks()
    model.train()
    compiled = torch.compile(model, backend="eager")
    for runner in (model, compiled):
        with pytest.raises(RuntimeError), Probe(runner):
            model.eval()
            runner(torch.randn(4, 7))  # wrong width: a Linear raises inside the forward
        assert model.training is False  # the caller set it inside the block: it stays
        model.train()
        assert not torch.overrides._get_current_function_mode_stack()
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in compiled.modules())
        # the eager stance of a compiled model is left too
        assert torch._dynamo.eval_frame._stance.stance == "default"
        # and the model runs as before
        assert runner(torch.randn(4, 3)).shape == (4, 4)


def test_keyboard_interrupt_in_the_forward_leaves_nothing_behind():
    class Interrupting(nn.Module):
        def forward(self, x):
            raise KeyboardInterrupt

    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), Interrupting())
    with pytest.raises(KeyboardInterrupt), Probe(model):
        model(torch.randn(2, 3))
    assert not torch.overrides._get_current_function_mode_stack()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


class Positions(nn.Module):
    """An abs of integer positions (not an activation of the network) beside a real tanh."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)

    def forward(self, x):
        distance = torch.abs(torch.arange(4) - 2)
        return torch.tanh(self.linear(x)) * distance


def test_activation_calls_not_measured_are_listed_with_counts():
    results = probe_model(Positions(), torch.randn(30, 3), batch_size=10)
    assert results.site_names() == ["tanh"]
    [(call, count)] = results.unprobed_calls.items()
    assert (call.name, call.function, count) == ("abs", "abs", 3)
    assert call.reason == "not a floating-point tensor"
    document = results.to_dict()
    assert document["unprobed_calls"] == [
        {"name": "abs", "function": "abs", "reason": "not a floating-point tensor", "calls": 3}
    ]


def test_named_sites_leave_other_activation_calls_listed():
    model = TwoCalls()
    results = probe_model(model, torch.randn(20, 3), sites=["a"])
    assert results.site_names() == ["a"]
    listed = {(c.name, c.reason): n for c, n in results.unprobed_calls.items()}
    assert listed == {("relu", "not selected by sites="): 2}
    # a functional site named by its pattern is measured
    named = probe_model(model, torch.randn(20, 3), sites=["relu[1]"])
    assert named.site_names() == ["relu[1]"] and named["relu[1]"].units == 4


def test_activations_that_ran_but_were_not_measured_are_an_error():
    class OnlyIntegers(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 3)

        def forward(self, x):
            return self.linear(x) * torch.relu(torch.arange(3) - 1)

    with pytest.raises(NoProbeSitesError, match=r"ran activations, but no probe site"):
        probe_model(OnlyIntegers(), torch.randn(5, 3))


def test_unit_axis_from_the_layer_that_made_the_input():
    torch.manual_seed(0)

    class ChannelsLastMlp(nn.Module):
        """ConvNeXt's pattern: a Linear on (N, H, W, C), then GELU: the units are the C."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 6, 3)  # (N, 6, L): channels on axis 1
            self.pointwise = nn.Linear(4, 5)

        def forward(self, x):
            h = F.relu(self.conv(x))
            image = h.reshape(h.shape[0], 6, 2, 4)  # (N, H, W, C) with C = 4 features
            return F.gelu(self.pointwise(image))

    x = torch.randn(9, 2, 10)
    results = probe_model(ChannelsLastMlp(), x)
    assert results["relu"].units == 6  # 3-D from a Conv1d: channels
    assert results["gelu"].units == 5  # 4-D from a Linear: the last axis
    assert results["gelu"].samples == 9 * 6 * 2


def test_unit_axis_override_per_site():
    torch.manual_seed(0)
    model = TwoCalls()
    x = torch.randn(7, 11, 3)  # (N, T, F)
    results = probe_model(model, x, unit_axis={"relu[1]": 1})
    assert results["relu[0]"].units == 5  # the Linear's features
    assert results["relu[1]"].units == 11  # as told: the positions
    with pytest.raises(ProbeError, match="unit_axis names 'nope'"):
        probe_model(model, x, unit_axis={"nope": 1})
    with pytest.raises(ProbeError, match="unit_axis must be"):
        Probe(model, unit_axis="last")


def test_leaf_wrapper_is_named_by_its_path_other_modules_by_path_and_function():
    class Act(nn.Module):  # no submodules: it is the activation
        def forward(self, x):
            return torch.sigmoid(x) + torch.tanh(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.act = nn.Linear(2, 3), Act()

        def forward(self, x):
            return F.silu(self.act(self.linear(x)))

    results = probe_model(Net(), torch.randn(12, 2))
    assert results.site_names() == ["act[0]", "act[1]", "silu"]
    assert [s.kind for s in results.sites] == ["sigmoid", "tanh", "silu"]


def test_names_are_the_same_in_another_process_state():
    """Site names do not depend on object ids or on what ran before: two fresh probes of two
    copies of a model, merged, match site by site."""
    a, b = Blocks(), Blocks()
    b.load_state_dict(a.state_dict())
    states: list[ProbeState] = []
    for model in (a, b):
        with Probe(model) as probe, torch.no_grad():
            model(torch.randn(8, 3))
        states.append(probe.state())
    assert states[0].names() == states[1].names()
    assert states[0].merged(states[1]).names() == states[0].names()


def test_the_mode_is_off_as_soon_as_a_forward_fails_inside_the_block():
    """A training loop that catches an error and goes on: the function mode must not stay on
    the stack (it would see the loop's own torch calls), and the next forward is probed."""
    model = Blocks()
    with Probe(model) as probe, torch.no_grad():
        with pytest.raises(RuntimeError):
            model(torch.randn(4, 7))
        assert not torch.overrides._get_current_function_mode_stack()
        model(torch.randn(6, 3))
    results = probe.results()
    assert results.samples == 6
    assert [s.samples for s in results.sites] == [6, 6, 6, 6]
