"""Builders: module names, defaults per family, seeded initialisation, specs that rebuild."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from variability.arch import (
    Abs,
    HanLayer,
    LCWLinear,
    Network,
    SpecError,
    build_model,
    count_params,
    param_count,
    rebuild,
)
from variability.probes.activations import activation_for_module


def names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_children()]


def test_module_names_in_depth_order():
    assert names(build_model("fc", 2, 1, 3, width=4, seed=0)) == [
        "linear1", "act1", "linear2", "act2", "linear3", "act3", "out",
    ]  # fmt: skip
    assert names(build_model("lcw", 2, 1, 3, width=4, seed=0)) == [
        "linear1", "act1", "lcw2", "act2", "lcw3", "act3", "out",
    ]  # fmt: skip
    assert names(build_model("han", 2, 1, 4, width=4, seed=0)) == [
        "linear1", "han1", "han2", "han3", "han4", "out",
    ]  # fmt: skip
    assert names(build_model("han", 2, 1, 1, width=4, seed=0)) == ["linear1", "han1", "out"]


def test_hidden_sites_are_probe_sites():
    for family in ("fc", "lcw", "han"):
        model = build_model(family, 3, 2, 4, width=6, seed=0)
        sites = model.hidden_sites()
        assert len(sites) == 4
        for name in sites:
            assert activation_for_module(getattr(model, name)) is not None, (family, name)


def test_family_defaults():
    fc = build_model("fc", 2, 1, 2, width=8, seed=0)
    assert isinstance(fc.act1, nn.ReLU) and fc.spec["init"] == "kaiming"
    lcw = build_model("lcw", 2, 1, 2, width=8, seed=0)
    assert isinstance(lcw.act1, nn.Sigmoid) and isinstance(lcw.lcw2, LCWLinear)
    han = build_model("han", 2, 1, 2, width=8, seed=0)
    assert isinstance(han.han1, Abs) and isinstance(han.han2, HanLayer)
    assert han.spec["init"] == "orthogonal" and han.spec["activation"] == "abs"
    assert activation_for_module(han.han1).name == "abs"


def test_kaiming_scales():
    # Hidden layers: variance gain^2 / fan_in (gain sqrt 2 for ReLU); the first layer: 1 / d_in.
    model = build_model("fc", 50, 3, 3, width=400, seed=1)
    assert model.linear2.weight.var().item() == pytest.approx(2 / 400, rel=0.03)
    assert model.linear1.weight.var().item() == pytest.approx(1 / 50, rel=0.05)
    assert model.linear2.weight.mean().item() == pytest.approx(0, abs=3e-3)
    for layer in (model.linear1, model.linear2, model.out):
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    sigmoid = build_model("fc", 50, 3, 3, width=400, activation="sigmoid", seed=1)
    assert sigmoid.linear2.weight.var().item() == pytest.approx(16 / 400, rel=0.03)


def test_han_linear_layers_are_orthogonal():
    model = build_model("han", 3, 2, 3, width=16, seed=2)
    eye = torch.eye(3, dtype=torch.float64)
    first = model.linear1.weight.detach().double()  # (16, 3): orthonormal columns
    torch.testing.assert_close(first.T @ first, eye, atol=1e-6, rtol=0)
    last = model.out.weight.detach().double()  # (2, 16): orthonormal rows
    torch.testing.assert_close(last @ last.T, eye[:2, :2], atol=1e-6, rtol=0)
    for k in (2, 3):
        han = getattr(model, f"han{k}")
        assert han.u.norm().item() == pytest.approx(1.0, abs=1e-6)
        assert han.b.abs().max().item() <= 1 / math.sqrt(16)


def test_orthogonal_init_for_fc_and_lcw():
    fc = build_model("fc", 2, 1, 2, width=8, init="orthogonal", seed=0)
    w = fc.linear2.weight.detach().double() / math.sqrt(2)  # gain sqrt 2 for ReLU
    torch.testing.assert_close(w @ w.T, torch.eye(8, dtype=torch.float64), atol=1e-6, rtol=0)
    lcw = build_model("lcw", 2, 1, 2, width=8, init="orthogonal", seed=0)
    weight = lcw.lcw2.weight.detach().double() / 4.0  # gain 4 for sigmoid
    projection = torch.eye(8, dtype=torch.float64) - 1 / 8
    torch.testing.assert_close(weight.T @ weight, projection, atol=1e-6, rtol=0)


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = build_model("fc", 4, 2, 3, width=10, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = build_model("fc", 4, 2, 3, width=10, seed=7)
    other = build_model("fc", 4, 2, 3, width=10, seed=8)
    x = torch.randn(5, 4)
    assert torch.equal(first(x), second(x))
    assert not torch.equal(first(x), other(x))


def test_seed_none_is_drawn_and_recorded():
    torch.manual_seed(0)
    model = build_model("han", 2, 1, 3, width=5)
    assert isinstance(model.spec["seed"], int)
    again = rebuild(model.spec)
    x = torch.randn(3, 2)
    assert torch.equal(model(x), again(x))
    torch.manual_seed(0)
    assert build_model("han", 2, 1, 3, width=5).spec["seed"] == model.spec["seed"]


@pytest.mark.parametrize("family", ["fc", "lcw", "han"])
def test_spec_is_json_and_rebuilds_the_same_model(family):
    model = build_model(family, 3, 2, 4, width=9, seed=11)
    text = json.dumps(model.spec)
    clone = build_model(**json.loads(text))
    assert isinstance(clone, Network) and clone.spec == model.spec
    x = torch.randn(6, 3)
    assert torch.equal(model(x), clone(x))
    assert set(model.spec) == {
        "family", "d_in", "d_out", "depth", "width", "activation", "init", "seed",
    }  # fmt: skip


def test_budget_instead_of_width():
    model = build_model("han", 2, 1, 20, params=3_032, seed=0)
    width = model.spec["width"]
    assert count_params(model) <= 3_032 < param_count("han", 2, 1, 20, width + 1)
    assert "params" not in model.spec


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"family": "cnn"}, "unknown family"),
        ({"width": None}, "width or a parameter budget"),
        ({"params": 1000}, "not both"),
        ({"activation": "softsign"}, "unknown activation"),
        ({"family": "han", "activation": "relu"}, "Han family uses abs"),
        ({"init": "xavier"}, "unknown init"),
        ({"width": 0}, "width must be"),
        ({"family": "lcw", "width": 1}, "width must be an integer >= 2"),
        ({"depth": 2.5}, "depth must be"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_invalid_specs(kwargs, match):
    arguments = {"family": "fc", "d_in": 2, "d_out": 1, "depth": 3, "width": 8} | kwargs
    with pytest.raises(SpecError, match=match):
        build_model(**arguments)


def test_rebuild_checks_keys():
    spec = build_model("fc", 2, 1, 2, width=3, seed=0).spec
    with pytest.raises(SpecError, match="missing width"):
        rebuild({k: v for k, v in spec.items() if k != "width"})
    with pytest.raises(SpecError, match="unexpected colour"):
        rebuild(spec | {"colour": "red"})


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "abs", "sigmoid", "tanh"])
def test_every_activation_builds_and_is_a_probe_site(activation):
    model = build_model("fc", 2, 1, 2, width=4, activation=activation, seed=0)
    assert activation_for_module(model.act1) is not None
    assert model(torch.randn(3, 2)).shape == (3, 1)


def test_cuda_when_available():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for family in ("fc", "lcw", "han"):
        model = build_model(family, 2, 1, 3, width=8, seed=0)
        x = torch.randn(4, 2)
        expected = model(x)
        torch.testing.assert_close(model.cuda()(x.cuda()).cpu(), expected, rtol=1e-4, atol=1e-5)


def test_numpy_integers_are_accepted_and_stored_as_int():
    import numpy as np

    model = build_model(
        "fc", np.int64(2), np.int32(1), np.int64(2), width=np.int64(5), seed=np.int64(3)
    )
    assert all(type(model.spec[k]) is int for k in ("d_in", "d_out", "depth", "width", "seed"))
    json.dumps(model.spec)
