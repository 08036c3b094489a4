"""Parameter counts against the formulas of DEFINITIONS.md, and the equal-parameter solver."""

from __future__ import annotations

import pytest

from variability.arch import (
    FAMILIES,
    BudgetError,
    SpecError,
    build_model,
    count_params,
    min_width,
    param_count,
    solve_width,
    solve_widths,
)

CONFIGS = [
    # (d_in, d_out, depth, width)
    (2, 1, 1, 1),
    (2, 1, 6, 100),
    (2, 2, 20, 30),
    (64, 10, 3, 17),
    (10, 1, 8, 5),
    (30, 2, 2, 64),
]


def definitions_formula(family, d_in, d_out, depth, w):
    """DEFINITIONS.md, written out independently of the package."""
    if family == "fc":
        return (d_in + 1) * w + (depth - 1) * (w**2 + w) + (w + 1) * d_out
    if family == "lcw":
        return (d_in + 1) * w + (depth - 1) * (w * (w - 1) + w) + (w + 1) * d_out
    return (d_in + 1) * w + 2 * w * (depth - 1) + (w + 1) * d_out


def test_hand_computed_counts():
    # FC 6 x 100 on 2-D input: 300 + 5 * 10,100 + 101.
    assert param_count("fc", 2, 1, 6, 100) == 50_901
    # With two outputs it is the 51,002 the Han paper quotes for its FCNet.
    assert param_count("fc", 2, 2, 6, 100) == 51_002
    # Han 20 x 30: 90 + 2 * 30 * 19 + 31.
    assert param_count("han", 2, 1, 20, 30) == 1_261
    # LCW 4 x 16: 48 + 3 * 256 + 17.
    assert param_count("lcw", 2, 1, 4, 16) == 833


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("d_in,d_out,depth,width", CONFIGS)
def test_built_models_match_the_formulas(family, d_in, d_out, depth, width):
    model = build_model(family, d_in, d_out, depth, width=width, seed=0)
    expected = definitions_formula(family, d_in, d_out, depth, width)
    assert count_params(model) == expected
    assert param_count(family, d_in, d_out, depth, width) == expected


def test_count_params_ignores_frozen_parameters_and_buffers():
    model = build_model("lcw", 2, 1, 3, width=8, seed=0)
    total = count_params(model)
    model.linear1.weight.requires_grad_(False)
    assert count_params(model) == total - 16
    assert sum(b.numel() for b in model.buffers()) > 0  # LCW bases exist but are not counted


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("budget", [1_000, 3_032, 10_000, 51_002, 250_000])
@pytest.mark.parametrize("depth", [1, 2, 6, 20])
def test_solver_gives_the_largest_width_within_budget(family, budget, depth):
    d_in, d_out = 2, 1
    try:
        width = solve_width(family, budget, depth, d_in, d_out)
    except BudgetError as error:
        # Refusals are only for budgets the family really cannot meet within 5%.
        if error.width is None:
            assert definitions_formula(family, d_in, d_out, depth, 1) > budget
        else:
            assert definitions_formula(family, d_in, d_out, depth, error.width) < 0.95 * budget
            assert definitions_formula(family, d_in, d_out, depth, error.width + 1) > budget
        return
    assert definitions_formula(family, d_in, d_out, depth, width) <= budget
    assert definitions_formula(family, d_in, d_out, depth, width + 1) > budget
    assert definitions_formula(family, d_in, d_out, depth, width) >= 0.95 * budget


def test_solver_hand_example():
    # FC depth 6 on 2-D input, one output: width 99 has 49,897 and width 100 has 50,901.
    assert solve_width("fc", 51_002, 6, 2, 1) == 100
    assert solve_width("fc", 50_901, 6, 2, 1) == 100
    assert solve_width("fc", 50_900, 6, 2, 1) == 99
    assert solve_widths(50_000, 6, 2, 1) == {"fc": 99, "lcw": 99, "han": 3571}


@pytest.mark.parametrize(
    ("family", "depth", "narrowest"),
    [("lcw", 1, 1), ("lcw", 2, 2), ("lcw", 3, 2), ("fc", 2, 1), ("han", 2, 1), ("fc", 1, 1)],
)
def test_narrowest_buildable_width(family, depth, narrowest):
    # LCW's hidden-to-hidden rows sum to zero, which needs at least 2 inputs: from depth 2 on
    # (one such layer at depth 2) the narrowest LCW is 2 wide; at depth 1 there is none.
    assert min_width(family, depth) == narrowest


def test_lcw_at_depth_two_is_at_least_two_wide():
    with pytest.raises(SpecError, match=">= 2"):
        build_model("lcw", 2, 1, 2, width=1, seed=0)
    assert count_params(build_model("lcw", 2, 1, 1, width=1, seed=0)) == 5  # depth 1: 3 + 2
    # a budget only width 1 would meet is refused; the nearest budget is width 2's count
    narrowest = definitions_formula("lcw", 2, 1, 2, 2)
    assert narrowest == 13  # 3 * 2 + (2 * 1 + 2) + 3 * 1
    with pytest.raises(BudgetError) as caught:
        solve_width("lcw", narrowest - 1, 2, 2, 1)
    assert caught.value.nearest_budget == narrowest
    assert solve_width("lcw", narrowest, 2, 2, 1) == 2


def test_budget_below_the_narrowest_model():
    with pytest.raises(BudgetError) as caught:
        solve_width("fc", 10, 6, 2, 1)
    error = caught.value
    assert error.family == "fc" and error.depth == 6 and error.budget == 10
    assert error.nearest_budget == definitions_formula("fc", 2, 1, 6, 1) == 15
    message = str(error)
    assert "fc" in message and "depth 6" in message and "10" in message and "15" in message


def test_budget_not_met_within_five_percent():
    # LCW at depth 20: width 12 has 2,785 and width 13 has 3,264; 3,032 is 8.1% above 2,785.
    assert definitions_formula("lcw", 2, 1, 20, 12) == 2_785
    assert definitions_formula("lcw", 2, 1, 20, 13) == 3_264
    with pytest.raises(BudgetError) as caught:
        solve_width("lcw", 3_032, 20, 2, 1)
    error = caught.value
    assert (error.family, error.depth, error.budget) == ("lcw", 20, 3_032)
    assert (error.width, error.count) == (12, 2_785)
    # Feasible near 3,032: up to floor(2,785 / 0.95) = 2,931 (width 12), or 3,264 (width 13).
    assert error.nearest_budget == 2_931
    message = str(error)
    for fragment in ("lcw", "depth 20", "3,032", "2,931", "3,264", "5%"):
        assert fragment in message
    # The nearest budget it names is accepted.
    assert solve_width("lcw", error.nearest_budget, 20, 2, 1) == 12


def test_nearest_budget_can_be_above():
    # FC depth 20: width 12 has 3,013 (feasible up to floor(3,013 / 0.95) = 3,171); width 13 has
    # 3,511. 3,450 is 279 above 3,171 and 61 below 3,511.
    assert definitions_formula("fc", 2, 1, 20, 12) == 3_013
    assert definitions_formula("fc", 2, 1, 20, 13) == 3_511
    with pytest.raises(BudgetError) as caught:
        solve_width("fc", 3_450, 20, 2, 1)
    assert caught.value.nearest_budget == 3_511
    assert solve_width("fc", 3_511, 20, 2, 1) == 13


def test_tolerance_is_an_option():
    assert solve_width("lcw", 3_032, 20, 2, 1, tolerance=0.1) == 12


def test_solve_widths_names_the_family_that_fails():
    with pytest.raises(BudgetError, match="lcw at depth 20"):
        solve_widths(3_032, 20, 2, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"family": "resnet"},
        {"params": 0},
        {"depth": 0},
        {"d_in": -1},
        {"params": 10.5},
        {"depth": True},
    ],
)
def test_invalid_arguments(kwargs):
    arguments = {"family": "fc", "params": 1_000, "depth": 2, "d_in": 2, "d_out": 1} | kwargs
    with pytest.raises(SpecError):
        solve_width(**arguments)


def test_errors_are_value_errors():
    assert issubclass(BudgetError, ValueError) and issubclass(SpecError, ValueError)
