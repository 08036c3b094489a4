"""Han layouts (which hidden layers are dense) and PyTorch's own initialisations.

The published "HanNet 20 x 30" has dense hidden layers 1, 2 and 20 and Han layers 3 to 19;
Yu & Zhang quote 3,032 parameters for it and 51,002 for their FCNet 6 x 100 (two outputs each).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from variability.arch import (
    BudgetError,
    HanLayer,
    SpecError,
    build_model,
    count_params,
    load_model,
    param_count,
    rebuild,
    save_model,
    solve_width,
    solve_widths,
)


def test_published_hannet_has_the_published_count():
    model = build_model("han", 2, 2, 20, width=30, layout="published", seed=0)
    # Linear(2, 30) + Linear(30, 30) + 17 Han layers of (u, b) + Linear(30, 30) + Linear(30, 2)
    written_out = (2 * 30 + 30) + (30 * 30 + 30) + 17 * (30 + 30) + (30 * 30 + 30) + (30 * 2 + 2)
    assert written_out == 3_032
    assert count_params(model) == written_out
    assert param_count("han", 2, 2, 20, 30, dense_layers=(1, 2, 20)) == written_out


def test_fcnet_6x100_has_the_published_count():
    model = build_model("fc", 2, 2, 6, width=100, init="torch-kaiming", seed=0)
    written_out = (2 * 100 + 100) + 5 * (100 * 100 + 100) + (100 * 2 + 2)
    assert written_out == 51_002
    assert count_params(model) == written_out


def test_published_layout_layers_in_depth_order():
    model = build_model("han", 2, 2, 5, width=4, layout="published", seed=0)
    kinds = [(name, type(module).__name__) for name, module in model.named_children()]
    assert kinds == [
        ("linear1", "Linear"),
        ("han1", "Abs"),
        ("linear2", "Linear"),
        ("han2", "Abs"),
        ("han3", "HanLayer"),
        ("han4", "HanLayer"),
        ("linear5", "Linear"),
        ("han5", "Abs"),
        ("out", "Linear"),
    ]
    assert model.hidden_sites() == ["han1", "han2", "han3", "han4", "han5"]
    assert model.dense_layers == (1, 2, 5)


@pytest.mark.parametrize("dense", [(1,), (1, 3), (1, 2, 6), (1, 2, 3, 4, 5, 6)])
@pytest.mark.parametrize("d_in,d_out,width", [(2, 1, 7), (5, 3, 11)])
def test_counts_of_any_layout_match_the_formula(dense, d_in, d_out, width):
    depth = 6
    n = len(dense)
    formula = (d_in + 1) * width + (n - 1) * (width**2 + width) + 2 * width * (depth - n)
    formula += (width + 1) * d_out
    model = build_model("han", d_in, d_out, depth, width=width, layout=dense, seed=1)
    assert count_params(model) == param_count("han", d_in, d_out, depth, width, dense) == formula
    assert sum(isinstance(m, HanLayer) for m in model.modules()) == depth - n


def test_the_spec_records_the_layout_and_rebuilds_it(tmp_path):
    model = build_model("han", 2, 2, 20, width=30, layout="published", seed=3)
    assert model.spec["dense_layers"] == [1, 2, 20]
    again = load_model(save_model(model, tmp_path / "han.pt"))
    assert again.spec == model.spec and again.dense_layers == (1, 2, 20)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_a_spec_without_dense_layers_is_the_default_layout():
    """Specs written before layouts existed (and default ones now) have no such key."""
    default = build_model("han", 2, 1, 4, width=5, seed=0)
    assert "dense_layers" not in default.spec
    assert default.hidden_sites() == ["han1", "han2", "han3", "han4"]
    assert rebuild(dict(default.spec)).spec == default.spec
    explicit = build_model("han", 2, 1, 4, width=5, seed=0, dense_layers=(1,))
    assert explicit.spec == default.spec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": "fc", "layout": "published"}, "Han networks"),
        ({"family": "han", "layout": "sideways"}, "unknown Han layout"),
        ({"family": "han", "layout": (2, 3)}, "layer 1"),
        ({"family": "han", "layout": (1, 9)}, "from 1 to the depth 4"),
        ({"family": "han", "layout": "published", "dense_layers": (1,)}, "not both"),
    ],
)
def test_bad_layouts_are_refused(kwargs, message):
    with pytest.raises(SpecError, match=message):
        build_model(d_in=2, d_out=1, depth=4, width=5, seed=0, **kwargs)


def test_solver_knows_the_layout():
    width = solve_width("han", 3_032, 20, 2, 2, dense_layers=(1, 2, 20))
    assert width == 30
    assert solve_widths(3_032, 20, 2, 2, han_layout="published", tolerance=0.1)["han"] == 30
    assert solve_widths(3_032, 20, 2, 2, tolerance=0.1)["han"] > 60  # default layout: wider
    with pytest.raises(BudgetError, match="dense layers 1, 2, 20"):
        solve_width("han", 100, 20, 2, 2, dense_layers=(1, 2, 20))


def test_torch_kaiming_is_pytorchs_rule_on_every_layer():
    """std sqrt(2 / fan_in) on the first layer too (ours uses gain 1 there), and nn.Linear's
    default bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    model = build_model("fc", 400, 2, 3, width=500, init="torch-kaiming", seed=0)
    ours = build_model("fc", 400, 2, 3, width=500, init="kaiming", seed=0)
    for layer in (model.linear1, model.linear2):
        fan_in = layer.weight.shape[1]
        std = float(layer.weight.detach().double().std())
        assert std == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.02)
        bound = 1.0 / math.sqrt(fan_in)
        bias = layer.bias.detach().double()
        assert float(bias.abs().max()) <= bound
        assert float(bias.std()) == pytest.approx(bound / math.sqrt(3.0), rel=0.15)
    assert float(ours.linear1.weight.detach().double().std()) == pytest.approx(
        1 / math.sqrt(400), rel=0.02
    )
    assert float(ours.linear1.bias.abs().max()) == 0.0


def test_torch_orthogonal_has_gain_one_and_default_biases():
    model = build_model("han", 2, 2, 20, width=30, layout="published", init="torch-orthogonal")
    weight = model.linear2.weight.detach().double()
    assert torch.allclose(weight @ weight.T, torch.eye(30, dtype=torch.float64), atol=1e-6)
    tall = model.linear1.weight.detach().double()  # (30, 2): orthonormal columns
    assert torch.allclose(tall.T @ tall, torch.eye(2, dtype=torch.float64), atol=1e-6)
    assert 0 < float(model.linear2.bias.abs().max()) <= 1 / math.sqrt(30)
    han = model.han3
    assert float(han.u.detach().norm()) == pytest.approx(1.0)
    assert float(han.b.abs().max()) <= 1 / math.sqrt(30)


def test_the_published_hannet_runs_and_trains():
    model = build_model("han", 2, 2, 20, width=30, layout="published", init="torch-orthogonal")
    x = torch.rand(100, 2) * 2 - 1
    loss = nn.functional.mse_loss(model(x), torch.zeros(100, 2))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
